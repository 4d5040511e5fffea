"""The plugin's ONNX pipeline against the training package's torch pipeline, on whole scenes (issue 4)."""
import json

import numpy as np
import pytest

from fers_qgis.core.enhancement import FersOptions, detect_fers
from training import export, inference, train
from training.synthetic import make_scene, write_scene
from tests.helpers import EVAL_DIR, EVAL_NAMES, EVAL_SCENES, read_raster

BANDS = 50  # the published setting, with its product rule


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """An untrained (seeded) B = 50 run and its ONNX export: parity does not depend on training."""
    root = tmp_path_factory.mktemp("inference")
    data = root / "data"
    data.mkdir()
    write_scene(make_scene(rows=70, columns=70, bands=60, anomalies=0, seed=1), str(data / "a.tif"),
                str(data / "a_gt.tif"))
    run = root / "run"
    assert train.main(["--stage", "student", "--bands", str(BANDS), "--data", str(data), "--out", str(run),
                       "--epochs", "0", "--validation-count", "0", "--seed", "3"]) == 0
    # The synthetic scenes carry made-up wavelengths (400-2500 nm); parity on real scenes of other sensors needs a
    # model that, like the shipped one, records none and reads the first 50 bands.
    config_path = run / train.CONFIG_FILE
    config = json.loads(config_path.read_text())
    config["wavelengths_nm"] = []
    config_path.write_text(json.dumps(config))
    spectral, _ = export.export_run(str(run), str(root / "models"), "untrained")
    return str(run), spectral


def assert_same_scores(model, scene, detector, tmp_path):
    run, spectral = model
    output = str(tmp_path / f"{detector}.tif")
    detect_fers(scene, output, spectral, FersOptions(detector=detector))
    ours = read_raster(output).cube_bhw[0].astype(np.float64)
    reference = inference.scene_scores(run, scene, detector)
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-4 * np.nanmax(reference))


@pytest.mark.parametrize("detector", inference.DETECTORS)
def test_onnx_pipeline_matches_torch_on_a_non_square_scene(model, detector, tmp_path):
    scene = str(tmp_path / "scene.tif")
    write_scene(make_scene(rows=83, columns=141, bands=64, anomalies=4, seed=5), scene, str(tmp_path / "gt.tif"))
    assert_same_scores(model, scene, detector, tmp_path)


@pytest.mark.skipif(not EVAL_SCENES, reason=f"real scenes not found in {EVAL_DIR}")
@pytest.mark.parametrize("truth", EVAL_SCENES, ids=EVAL_NAMES)
def test_onnx_pipeline_matches_torch_on_real_scenes(model, truth, tmp_path):
    assert_same_scores(model, truth[:-len("_gt.tif")] + ".tif", "fers", tmp_path)
