"""The algorithm run by qgis_process, QGIS's command-line runner, with the plugin enabled in a throw-away profile.

Debian's /usr/bin/qgis_process wrapper passes QGIS_OPTS='--noversioncheck' from /etc/default/qgis, which
qgis_process rejects ("Command --noversioncheck not known!"); scripts.qgis_process calls the binary directly.
"""
import json
import os
import zipfile

import numpy as np
import pytest

from scripts import qgis_process as runner
from fers_qgis.core.onnx_runtime import shipped_models
from tests.helpers import (EVAL_DIR, EVAL_SCENES, TEST_EPSG, TEST_GEOTRANSFORM, read_raster, same_crs,
                           set_wavelengths, written_anomaly_scene)

ALGORITHM = "fers:detectanomaliesrx"

pytestmark = pytest.mark.skipif(not os.access(runner.QGIS_PROCESS, os.X_OK),
                                reason=f"{runner.QGIS_PROCESS} is not installed (it comes with the QGIS package)")


@pytest.fixture(scope="module")
def qgis_process(tmp_path_factory):
    """A function running qgis_process in a fresh profile where the plugin (found on QGIS_PLUGINPATH) is enabled."""
    profile = str(tmp_path_factory.mktemp("qgis_profile"))
    enabled = runner.run(["plugins", "enable", runner.PLUGIN_NAME], profile)
    assert enabled.returncode == 0, enabled.stdout + enabled.stderr
    return lambda *arguments: runner.run(arguments, profile, timeout=120)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """The 8-band anomaly scene, its bands at 400, 450, ... 750 nm."""
    scene = written_anomaly_scene(tmp_path_factory.mktemp("scene"))
    set_wavelengths(scene.path, [400.0 + 50 * band for band in range(8)])
    return scene


def top_positions(scores_hw, count):
    ranked = scores_hw.ravel().argsort()[::-1][:count]
    return {tuple(int(i) for i in np.unravel_index(index, scores_hw.shape)) for index in ranked}


def test_qgis_process_runs_the_algorithm(qgis_process, scene, tmp_path):
    output = str(tmp_path / "rx.tif")
    completed = qgis_process("--json", "run", ALGORITHM, "--", f"INPUT={scene.path}", "DETECTOR=1",
                             f"OUTPUT={output}")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    report = json.loads(completed.stdout)
    assert report["results"]["OUTPUT"] == output
    assert report["provider_details"]["supported_output_raster_extensions"] == ["tif"]

    written = read_raster(output)
    assert written.cube_bhw.shape == (1, 30, 40)
    assert written.geotransform == TEST_GEOTRANSFORM
    assert same_crs(written.projection_wkt, TEST_EPSG)
    assert top_positions(written.cube_bhw[0], 3) == set(scene.anomalies.values())


@pytest.mark.parametrize("bands", ["1,2,3,4", "1-4", "400-550 nm"])
def test_qgis_process_accepts_band_lists_ranges_and_wavelength_ranges(qgis_process, scene, tmp_path, bands):
    output = str(tmp_path / "bands.tif")
    completed = qgis_process("run", ALGORITHM, "--", f"INPUT={scene.path}", f"BANDS={bands}", f"OUTPUT={output}")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "using 4 bands" in completed.stdout
    anomalies = scene.anomalies
    assert top_positions(read_raster(output).cube_bhw[0], 2) == {anomalies["all_bands"], anomalies["bands_1_4"]}


def test_qgis_process_names_band_numbers_that_do_not_exist(qgis_process, scene, tmp_path):
    output = tmp_path / "rx.tif"
    completed = qgis_process("run", ALGORITHM, "--", f"INPUT={scene.path}", "BANDS=1-50", f"OUTPUT={output}")
    assert completed.returncode != 0
    assert "Band numbers 9-50 do not exist" in completed.stdout + completed.stderr
    assert not output.exists()


def test_qgis_process_reports_bad_parameters(qgis_process, scene, tmp_path):
    output = tmp_path / "rx.tif"
    completed = qgis_process("run", ALGORITHM, "--", f"INPUT={scene.path}", "DETECTOR=1", "INNER_WINDOW=4",
                             f"OUTPUT={output}")
    assert completed.returncode != 0
    assert "Window sizes must be odd" in completed.stdout + completed.stderr
    assert not output.exists()


@pytest.fixture(scope="module")
def fers_model(tmp_path_factory):
    pytest.importorskip("torch", reason="the test model is exported with torch")
    from tests.fers_models import ExportedModelSet

    return ExportedModelSet(tmp_path_factory.mktemp("model"), bands=6)


def test_qgis_process_without_onnxruntime_says_how_to_install_it(qgis_process, scene, fers_model, tmp_path):
    """QGIS's own Python lacks onnxruntime until the user installs it: the run must say how."""
    output = tmp_path / "fers.tif"
    completed = qgis_process("run", "fers:detectanomaliesfers", "--", f"INPUT={scene.path}",
                             f"MODEL_FILE={fers_model.spectral_path}", f"OUTPUT={output}")
    assert completed.returncode != 0
    assert "Install FERS dependencies" in completed.stdout + completed.stderr
    assert not output.exists()


def test_qgis_process_runs_fers_like_the_core(scene, fers_model, tmp_path):
    """With onnxruntime in the profile's private folder, qgis_process gives the core's scores exactly."""
    from fers_qgis.core.enhancement import FersOptions, detect_fers

    profile = str(tmp_path / "profile")
    runner.provide_onnxruntime(profile)
    output = tmp_path / "fers.tif"
    completed = runner.run_algorithm("fers:detectanomaliesfers", {
        "INPUT": scene.path, "MODEL_FILE": fers_model.spectral_path, "OUTPUT": str(output)}, profile)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    expected = tmp_path / "core.tif"
    detect_fers(scene.path, str(expected), fers_model.spectral_path, FersOptions())
    np.testing.assert_array_equal(read_raster(str(output)).cube_bhw, read_raster(str(expected)).cube_bhw)


@pytest.mark.skipif(not EVAL_SCENES, reason=f"real scenes not found in {EVAL_DIR}")
@pytest.mark.skipif(not shipped_models(), reason="no model is shipped under resources/models")
def test_qgis_process_reproduces_the_evaluation_cli_on_real_scenes(tmp_path):
    """Issue 4's acceptance: the algorithm with its default model gives the evaluation CLI's AUC on every scene."""
    from training.evaluate import evaluate_scene, labelled_scenes, make_detector

    profile = str(tmp_path / "profile")
    runner.provide_onnxruntime(profile)

    def through_qgis_process(scene, output):
        completed = runner.run_algorithm("fers:detectanomaliesfers", {"INPUT": scene, "OUTPUT": output}, profile)
        assert completed.returncode == 0, completed.stdout + completed.stderr

    cli_detector = make_detector("fers")
    for name in labelled_scenes(EVAL_DIR):
        ours = evaluate_scene(through_qgis_process, EVAL_DIR, name, str(tmp_path))
        cli = evaluate_scene(cli_detector, EVAL_DIR, name, str(tmp_path))
        assert abs(ours.auc - cli.auc) <= 1e-4, (name, ours.auc, cli.auc)


def test_qgis_process_runs_rx_on_an_emit_subdataset_name(qgis_process, tmp_path):
    """Before: the subdataset name NETCDF:"file.nc":reflectance was "not found"; now the product is imported on
    the fly and scored as recorded (sensor geometry), placed by GCPs in WGS 84."""
    pytest.importorskip("netCDF4", reason="building the EMIT test product needs netCDF4")
    from osgeo import gdal

    from tests.product_files import write_emit_l2a

    granule = write_emit_l2a(tmp_path)
    output = str(tmp_path / "rx.tif")
    completed = qgis_process("run", ALGORITHM, "--", f'INPUT=NETCDF:"{granule.path}":reflectance',
                             f"OUTPUT={output}")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert read_raster(output).cube_bhw.shape == (1,) + granule.swath_dcb.shape[:2]
    dataset = gdal.Open(output)
    assert dataset.GetGCPCount() > 0 and same_crs(dataset.GetGCPProjection(), 4326)


def test_qgis_process_runs_rx_on_a_raster_inside_a_zip(qgis_process, scene, tmp_path):
    """Before: /vsizip/delivery.zip/scene.tif (how many portals deliver) was "not found"; GDAL reads it in place."""
    archive = tmp_path / "delivery.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.write(scene.path, "scene.tif")
    output = str(tmp_path / "rx.tif")
    completed = qgis_process("run", ALGORITHM, "--", f"INPUT=/vsizip/{archive}/scene.tif", f"OUTPUT={output}")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert top_positions(read_raster(output).cube_bhw[0], 1) <= set(scene.anomalies.values())
