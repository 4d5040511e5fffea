"""Detect anomalies (FERS) and Enhance background features (FERS) run as the toolbox runs them: processing.run."""
import os
import sys

import numpy as np
import pytest

pytest.importorskip("torch", reason="the test models are built and exported with torch")
pytest.importorskip("onnxruntime", reason="FERS models run with onnxruntime")

import processing  # noqa: E402
from qgis.core import QgsApplication, QgsProcessingException  # noqa: E402

from fers_qgis.compat import PARAMETER_OPTIONAL  # noqa: E402
from fers_qgis.gui.layer_menu import RASTER_LAYER_ACTIONS  # noqa: E402
from tests.fers_models import ExportedModelSet, normalised_first_bands, reference_rx  # noqa: E402
from tests.helpers import TEST_GEOTRANSFORM, anomaly_scene, read_raster, write_raster  # noqa: E402

DETECT = "fers:detectanomaliesfers"
ENHANCE = "fers:enhancefeatures"
OUTPUT_NODATA = -9999.0

pytestmark = pytest.mark.usefixtures("fers_plugin")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return ExportedModelSet(tmp_path_factory.mktemp("models"), bands=6)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """The 40 x 30 x 8 anomaly scene with a nodata corner."""
    scene = anomaly_scene()
    cube_bhw = scene.cube_bhw.copy()
    cube_bhw[:, :2, :3] = -1000.0
    scene.valid_hw = np.ones(cube_bhw.shape[1:], dtype=bool)
    scene.valid_hw[:2, :3] = False
    scene.cube_bhw = cube_bhw
    scene.path = write_raster(tmp_path_factory.mktemp("scene") / "scene.tif", cube_bhw, nodata=-1000.0)
    return scene


def test_algorithms_are_registered_with_layer_menu_entries():
    registry = QgsApplication.processingRegistry()
    for algorithm_id in (DETECT, ENHANCE):
        assert registry.algorithmById(algorithm_id) is not None
    entries = {action.algorithm_id: action.text for action in RASTER_LAYER_ACTIONS}
    assert entries[DETECT] == "Detect anomalies (FERS)..."
    assert entries[ENHANCE] == "Enhance background features (FERS)..."


def test_detect_fers_scores_equal_the_core_reference(scene, models, output_dir):
    output = str(output_dir / "fers.tif")
    result = processing.run(DETECT, {"INPUT": scene.path, "MODEL_FILE": models.spectral_path, "OUTPUT": output})
    assert result["OUTPUT"] == output
    written = read_raster(output)
    assert written.cube_bhw.shape == (1, 30, 40) and written.geotransform == TEST_GEOTRANSFORM
    assert written.band_names == ("FERS-RX anomaly score",)
    scores = written.cube_bhw[0].astype(np.float64)
    assert np.all(scores[~scene.valid_hw] == OUTPUT_NODATA)
    cube = np.where(scene.valid_hw[None], scene.cube_bhw, 0)
    x = normalised_first_bands(cube, 6, scene.valid_hw).astype(np.float64)
    expected = reference_rx(x + models.spectral_reference(x) + models.spatial_reference(x), scene.valid_hw)
    valid = scene.valid_hw
    np.testing.assert_allclose(scores[valid], expected[valid], rtol=1e-4, atol=1e-4 * np.nanmax(expected))


@pytest.mark.parametrize("detector", [1, 2, 3])
def test_other_detectors_and_scaling(scene, models, output_dir, detector):
    output = str(output_dir / f"detector{detector}.tif")
    processing.run(DETECT, {"INPUT": scene.path, "MODEL_FILE": models.spectral_path, "DETECTOR": detector,
                            "INNER_WINDOW": 3, "OUTER_WINDOW": 9, "SCALE": True, "OUTPUT": output})
    written = read_raster(output)
    scores = written.cube_bhw[0][scene.valid_hw]
    assert scores.min() == 0.0 and abs(scores.max() - 1.0) < 1e-6
    assert "scaled 0-1" in written.band_names[0]


def test_enhance_writes_enhanced_cube_and_feature_maps(scene, models, output_dir):
    outputs = {name: str(output_dir / f"{name.lower()}.tif") for name in ("OUTPUT", "SPECTRAL_OUTPUT",
                                                                          "SPATIAL_OUTPUT")}
    result = processing.run(ENHANCE, {"INPUT": scene.path, "MODEL_FILE": models.spectral_path, **outputs})
    assert result == outputs
    cubes = {name: read_raster(path) for name, path in outputs.items()}
    assert cubes["OUTPUT"].cube_bhw.shape == (6, 30, 40)
    assert cubes["OUTPUT"].band_names[0] == "Band 1 (enhanced)"
    valid = scene.valid_hw
    enhanced = cubes["OUTPUT"].cube_bhw[:, valid].astype(np.float64)
    parts = cubes["SPECTRAL_OUTPUT"].cube_bhw[:, valid] + cubes["SPATIAL_OUTPUT"].cube_bhw[:, valid]
    cube = np.where(valid[None], scene.cube_bhw, 0)
    x = normalised_first_bands(cube, 6, valid)[:, valid]
    np.testing.assert_allclose(enhanced, x + parts, atol=1e-5 * np.abs(enhanced).max())


def test_enhance_without_optional_outputs(scene, models, output_dir):
    output = str(output_dir / "enhanced.tif")
    result = processing.run(ENHANCE, {"INPUT": scene.path, "MODEL_FILE": models.spectral_path, "OUTPUT": output})
    assert result == {"OUTPUT": output}
    assert os.listdir(output_dir) == ["enhanced.tif"]


def test_damaged_model_is_refused_before_the_run(scene, tmp_path, output_dir):
    damaged = tmp_path / "damaged.spectral.onnx"
    damaged.write_bytes(b"not an onnx file at all")
    with pytest.raises(QgsProcessingException, match="damaged.spectral.onnx cannot be loaded as an ONNX model"):
        processing.run(DETECT, {"INPUT": scene.path, "MODEL_FILE": str(damaged),
                                "OUTPUT": str(output_dir / "fers.tif")})
    assert os.listdir(output_dir) == []


def test_model_with_too_many_bands_names_the_alternatives(tmp_path, output_dir, models):
    four_bands = write_raster(tmp_path / "four.tif", anomaly_scene().cube_bhw[:4])
    with pytest.raises(QgsProcessingException, match="resample"):
        processing.run(DETECT, {"INPUT": four_bands, "MODEL_FILE": models.spectral_path,
                                "OUTPUT": str(output_dir / "fers.tif")})
    assert os.listdir(output_dir) == []


def test_missing_onnxruntime_points_to_the_installer(scene, models, output_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(QgsProcessingException, match="Install FERS dependencies"):
        processing.run(DETECT, {"INPUT": scene.path, "MODEL_FILE": models.spectral_path,
                                "OUTPUT": str(output_dir / "fers.tif")})
    assert os.listdir(output_dir) == []


def test_shipped_models_are_offered_and_the_automatic_choice_fits_the_raster(scene, output_dir, tmp_path,
                                                                            monkeypatch):
    from fers_qgis.core import onnx_runtime
    shipped = {bands: ExportedModelSet(tmp_path, bands=bands, name=f"fers-b{bands}-first") for bands in (4, 8)}
    monkeypatch.setattr(onnx_runtime, "MODEL_FOLDERS", (str(tmp_path),))
    algorithm = QgsApplication.processingRegistry().createAlgorithmById(DETECT)
    options = algorithm.parameterDefinition("MODEL").options()
    assert options[0].startswith("Automatic") and options[1:] == [
        "FERS, first 4 bands (shipped: fers-b4-first)", "FERS, first 8 bands (shipped: fers-b8-first)"]
    model_file = algorithm.parameterDefinition("MODEL_FILE")
    assert model_file.flags() & PARAMETER_OPTIONAL
    six_bands = write_raster(tmp_path / "six.tif", scene.cube_bhw[:6])
    for raster, bands in ((six_bands, 4), (scene.path, 8)):  # 6 bands: only b4 fits; 8 bands: b8 reads more
        automatic = str(output_dir / f"automatic{bands}.tif")
        processing.run(DETECT, {"INPUT": raster, "OUTPUT": automatic})
        custom = str(output_dir / f"custom{bands}.tif")
        processing.run(DETECT, {"INPUT": raster, "MODEL_FILE": shipped[bands].spectral_path, "OUTPUT": custom})
        np.testing.assert_array_equal(read_raster(automatic).cube_bhw, read_raster(custom).cube_bhw)
    chosen, custom = str(output_dir / "chosen.tif"), str(output_dir / "b4_on_eight.tif")
    processing.run(DETECT, {"INPUT": scene.path, "MODEL": 1, "OUTPUT": chosen})  # b4 chosen by hand
    processing.run(DETECT, {"INPUT": scene.path, "MODEL_FILE": shipped[4].spectral_path, "OUTPUT": custom})
    np.testing.assert_array_equal(read_raster(chosen).cube_bhw, read_raster(custom).cube_bhw)
    assert not np.array_equal(read_raster(chosen).cube_bhw, read_raster(output_dir / "automatic8.tif").cube_bhw)
    three_bands = write_raster(tmp_path / "three.tif", scene.cube_bhw[:3])
    with pytest.raises(QgsProcessingException, match="3 bands, and no shipped model set can read it"):
        processing.run(DETECT, {"INPUT": three_bands, "OUTPUT": str(output_dir / "three.tif")})
    assert not os.path.exists(output_dir / "three.tif")


def test_without_shipped_models_a_model_file_is_required(scene, output_dir, monkeypatch):
    from fers_qgis.core import onnx_runtime
    monkeypatch.setattr(onnx_runtime, "MODEL_FOLDERS", (str(output_dir / "none"),))
    algorithm = QgsApplication.processingRegistry().createAlgorithmById(DETECT)
    assert algorithm.parameterDefinition("MODEL") is None
    with pytest.raises(QgsProcessingException):
        processing.run(DETECT, {"INPUT": scene.path, "OUTPUT": str(output_dir / "fers.tif")})
    assert os.listdir(output_dir) == []
