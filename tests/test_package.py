"""make package: the zip installs into a clean QGIS profile and its algorithms run from qgis_process."""
import configparser
import os
import zipfile

import pytest

from scripts import package
from scripts import qgis_process as runner
from tests.helpers import read_raster, written_anomaly_scene

REQUIRED_METADATA = ("name", "qgisMinimumVersion", "description", "about", "version", "author", "email", "homepage",
                     "tracker", "repository", "tags", "icon", "hasProcessingProvider")


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return package.build(str(tmp_path_factory.mktemp("dist")))


def test_zip_holds_the_plugin_and_its_models_only(archive):
    names = zipfile.ZipFile(archive).namelist()
    assert os.path.basename(archive) == f"fers_qgis-{package.plugin_version()}.zip"
    assert all(name.startswith("fers_qgis/") for name in names)
    assert {"fers_qgis/__init__.py", "fers_qgis/metadata.txt", "fers_qgis/icon.svg"} <= set(names)
    assert not any(part in name for name in names for part in ("__pycache__", "tests/", "training/", ".pyc"))
    shipped = sorted(name for name in os.listdir(package.MODEL_SOURCE) if name.endswith(package.MODEL_SUFFIXES)) \
        if os.path.isdir(package.MODEL_SOURCE) else []
    assert sorted(name[len("fers_qgis/models/"):] for name in names if name.startswith("fers_qgis/models/")) == shipped
    assert os.path.getsize(archive) < package.SIZE_LIMIT
    metadata = configparser.ConfigParser()
    metadata.read_string(zipfile.ZipFile(archive).read("fers_qgis/metadata.txt").decode())
    general = metadata["general"]
    assert all(general.get(key) for key in REQUIRED_METADATA)
    assert general["hasProcessingProvider"] == "yes" and "onnxruntime" in general["about"]


@pytest.mark.skipif(not os.access(runner.QGIS_PROCESS, os.X_OK), reason=f"{runner.QGIS_PROCESS} is not installed")
def test_unpacked_zip_installs_in_a_clean_profile_and_runs(archive, tmp_path):
    plugins = tmp_path / "plugins"
    zipfile.ZipFile(archive).extractall(plugins)
    scene = written_anomaly_scene(tmp_path)
    source = scene.path
    output = str(tmp_path / "rx.tif")
    completed = runner.run_algorithm("fers:detectanomaliesrx", {"INPUT": source, "OUTPUT": output},
                                     str(tmp_path / "profile"), plugin_path=str(plugins))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    scores = read_raster(output).cube_bhw[0]
    top = {tuple(int(i) for i in divmod(int(index), scores.shape[1])) for index in scores.ravel().argsort()[-3:]}
    assert top == set(scene.anomalies.values())
