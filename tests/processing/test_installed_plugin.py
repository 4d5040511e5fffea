"""The plugin as a user of this QGIS has it: installed from the package zip into a profile, onnxruntime installed
there by the plugin's own installer code (scripts/install_onnxruntime.py), run by qgis_process without
QGIS_PLUGINPATH.

`make test-qgis` prepares that profile in each Debian 13 root and names it in FERS_QGIS_PROFILE; skipped elsewhere.
"""
import json
import os

import numpy as np
import pytest
from qgis.core import QgsApplication

from fers_qgis import dependencies
from scripts import qgis_process as runner
from tests.helpers import TEST_EPSG, TEST_GEOTRANSFORM, read_raster, same_crs, write_raster

PROFILE = os.environ.get("FERS_QGIS_PROFILE", "")
BANDS = 60  # the shipped model reads 50
NODATA = -9999.0

pytestmark = pytest.mark.skipif(not PROFILE, reason="runs in make test-qgis's QGIS roots (FERS_QGIS_PROFILE unset)")


def installed(*arguments):
    """qgis_process in the prepared profile, which must find the plugin in its own plugins folder."""
    return runner.run(arguments, PROFILE, plugin_path="", timeout=300)


@pytest.fixture(scope="module")
def enabled():
    completed = installed("plugins", "enable", runner.PLUGIN_NAME)
    assert completed.returncode == 0 or "already enabled" in completed.stderr, completed.stdout + completed.stderr


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """60 bands correlated like a spectrum, one anomalous pixel and a nodata corner."""
    rng = np.random.default_rng(1)
    cube = rng.normal(size=(BANDS, 48, 64)).cumsum(axis=0) + 100.0
    cube[:, 20, 30] += 25.0
    cube[:, :4, :6] = NODATA
    return write_raster(tmp_path_factory.mktemp("scene") / "scene.tif", cube.astype(np.float32), nodata=NODATA)


def test_the_installed_plugin_offers_every_algorithm(enabled, fers_plugin):
    listed = json.loads(installed("--json", "list").stdout)
    provider = QgsApplication.processingRegistry().providerById("fers")
    assert sorted(listed["providers"]["fers"]["algorithms"]) == sorted(a.id() for a in provider.algorithms())


def test_fers_runs_with_the_shipped_model_and_the_installed_onnxruntime(enabled, scene, tmp_path):
    output = tmp_path / "fers.tif"
    completed = installed("run", "fers:detectanomaliesfers", "--", f"INPUT={scene}", f"OUTPUT={output}")
    assert completed.returncode == 0, completed.stdout + completed.stderr

    # The core in this process, with the onnxruntime the installer put in the profile, as the plugin finds it.
    dependencies.add_to_path(dependencies.private_site_dir(runner.profile_settings_dir(PROFILE)))
    from fers_qgis.core.enhancement import detect_fers
    from fers_qgis.core.onnx_runtime import shipped_model_for

    expected = tmp_path / "core.tif"
    detect_fers(scene, str(expected), shipped_model_for(BANDS))
    written, reference = read_raster(output), read_raster(expected)
    assert written.geotransform == TEST_GEOTRANSFORM and same_crs(written.projection_wkt, TEST_EPSG)
    assert written.nodata == reference.nodata and written.nodata[0] is not None
    scores = written.cube_bhw[0]
    assert (scores[:4, :6] == written.nodata[0]).all() and np.isfinite(scores[4:]).all()
    np.testing.assert_array_equal(written.cube_bhw, reference.cube_bhw)
    assert np.unravel_index(scores.argmax(), scores.shape) == (20, 30)
