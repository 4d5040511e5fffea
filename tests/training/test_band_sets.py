"""The band-set experiment: a model copy fed by wavelength against the original."""
import pytest

from tests.helpers import set_wavelengths, write_raster
from training import band_sets

pytest.importorskip("torch", reason="the test model is exported with torch")
pytest.importorskip("onnxruntime", reason="FERS models run with onnxruntime")


def test_same_band_set_scores_identically_and_a_short_sensor_is_refused(tmp_path, capsys):
    from tests.core.test_enhancement import scene_cube
    from tests.fers_models import ExportedModelSet

    (tmp_path / "models").mkdir()
    models = ExportedModelSet(tmp_path / "models", bands=6)
    sensor = set_wavelengths(write_raster(tmp_path / "sensor.tif", scene_cube(24, 24, bands=10)),
                             [400.0 + 10 * band for band in range(10)])
    finer = set_wavelengths(write_raster(tmp_path / "finer.tif", scene_cube(24, 24, bands=20, seed=1)),
                            [400.0 + 5 * band for band in range(20)])
    short = set_wavelengths(write_raster(tmp_path / "short.tif", scene_cube(24, 24, bands=10, seed=2)),
                            [480.0 + 10 * band for band in range(10)])
    assert band_sets.main(["--model", models.spectral_path, "--wavelengths-from", sensor, sensor, finer,
                           short]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "model bands as sensor.tif's first 6: 400.0-450.0 nm"
    assert "sensor: first 400-450 nm; by wavelength 400-450 nm; scores identical: True" in lines[1]
    assert "finer: first 400-425 nm; by wavelength 400-450 nm; scores identical: False" in lines[2]
    assert "short: first 480-530 nm; by wavelength refused: This model reads 400-450 nm" in lines[3]
