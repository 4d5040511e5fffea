"""make package: the zip installs into a clean QGIS profile and its algorithms run from qgis_process."""
import configparser
import os
import zipfile

import pytest

from scripts import package
from scripts import qgis_process as runner
from tests.helpers import read_raster, written_anomaly_scene

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
    assert all(general.get(key) for key in package.REQUIRED_METADATA)
    assert general["hasProcessingProvider"] == "yes" and "onnxruntime" in general["about"]


def test_zip_passes_the_plugin_repository_checks(archive):
    """What plugins.qgis.org runs on an upload: no Bandit or detect-secrets finding, no refused file or field."""
    blocking, _ = package.repository_findings(archive)
    assert blocking == []
    names = zipfile.ZipFile(archive).namelist()
    assert "fers_qgis/LICENSE" in names
    assert not any(name.endswith((".pyc", ".pyo")) or "__pycache__" in name for name in names)
    assert os.path.getsize(archive) < 25_000_000


def test_repository_checks_catch_what_the_site_blocks(archive, tmp_path):
    """A plugin that loads pickles, holds a key and lost a metadata field is refused, and make package keeps no zip."""
    bad = str(tmp_path / "bad.zip")
    with zipfile.ZipFile(archive) as good, zipfile.ZipFile(bad, "w") as copy:
        for name in good.namelist():
            text = good.read(name)
            if name == "fers_qgis/metadata.txt":
                text = text.replace(b"\ntracker=", b"\nbugs=")
            copy.writestr(name, text)
        copy.writestr("fers_qgis/core/cache.py", "import pickle\n\n\ndef load(path):\n"
                      "    return pickle.load(open(path, 'rb'))\n")
        copy.writestr("fers_qgis/service.py", 'AWS_ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"\n')
        copy.writestr("fers_qgis/__pycache__/plugin.cpython-311.pyc", b"\0")
    blocking = "\n".join(package.repository_findings(bad)[0])
    for expected in ("'tracker'", "cache.py:5: Bandit B301", "service.py:1: detect-secrets: AWS Access Key",
                     "__pycache__/plugin.cpython-311.pyc"):
        assert expected in blocking, blocking


def test_make_package_keeps_no_zip_the_site_would_block(tmp_path, monkeypatch):
    monkeypatch.setattr(package, "REQUIRED_METADATA", package.REQUIRED_METADATA + ("a_field_nobody_writes",))
    with pytest.raises(SystemExit, match="a_field_nobody_writes"):
        package.build(str(tmp_path))
    assert os.listdir(tmp_path) == []


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
