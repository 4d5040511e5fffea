"""The saturated-pixel check: copies with saturated background pixels, evaluated beside the originals."""
import numpy as np

from tests.helpers import read_raster, write_raster
from training import saturation
from training.synthetic import make_scene, write_scene


def test_saturated_copy_changes_only_the_chosen_background_pixels(tmp_path):
    cube = np.random.default_rng(0).integers(0, 4000, size=(5, 20, 30)).astype(np.uint16)
    labels = np.zeros((20, 30), dtype=np.uint8)
    labels[:10] = 1  # half the scene is anomalous: saturation must land in the other half
    source = write_raster(tmp_path / "scene.tif", cube)
    saturation.write_saturated_copy(source, str(tmp_path / "copy.tif"), labels, 6, seed=1)
    copy = read_raster(tmp_path / "copy.tif")
    changed = np.any(copy.cube_bhw != cube, axis=0)
    assert changed.sum() == 6 and not (changed & (labels == 1)).any()
    assert np.all(copy.cube_bhw[:, changed] == 65535) and copy.geotransform == read_raster(source).geotransform


def test_cli_prints_clean_and_saturated_aucs(tmp_path, capsys):
    write_scene(make_scene(rows=40, columns=50, bands=20, anomalies=4, seed=0),
                str(tmp_path / "alpha.tif"), str(tmp_path / "alpha_gt.tif"))
    assert saturation.main(["--scenes", str(tmp_path), "--detector", "rx", "--pixels", "3"]) == 0
    printed = capsys.readouterr().out
    assert "3 saturated pixels" in printed and "alpha" in printed and "mean" in printed
