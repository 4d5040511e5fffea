"""Installing onnxruntime for QGIS's Python: private folder, pinned version, nothing else installed."""
import os
import subprocess
import sys

import pytest

from fers_qgis import dependencies

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_pinned_onnxruntime_matches_requirements():
    with open(os.path.join(REPOSITORY, "requirements.txt")) as handle:
        pins = [line.strip() for line in handle if line.startswith("onnxruntime")]
    assert pins == [dependencies.ONNXRUNTIME_REQUIREMENT]


def test_private_folder_is_per_profile_and_python_version(tmp_path):
    folder = dependencies.private_site_dir(str(tmp_path))
    assert folder.startswith(str(tmp_path))
    assert folder.endswith(f"site-packages-python{sys.version_info.major}{sys.version_info.minor}")


def test_pip_arguments_install_only_the_pinned_package_into_the_folder(tmp_path):
    arguments = dependencies.pip_install_arguments(str(tmp_path))
    assert arguments[:3] == ["-m", "pip", "install"]
    assert "--no-deps" in arguments
    assert arguments[arguments.index("--target") + 1] == str(tmp_path)
    assert arguments[-1] == dependencies.ONNXRUNTIME_REQUIREMENT


def test_plugin_load_puts_the_private_folder_on_sys_path(qgis_iface):
    from fers_qgis import classFactory
    from fers_qgis.plugin import private_site_dir

    classFactory(qgis_iface)
    assert private_site_dir() in sys.path


def test_install_menu_entry_is_added_and_removed(qgis_iface, monkeypatch):
    from unittest import mock

    from fers_qgis import classFactory

    add, remove = mock.Mock(), mock.Mock()
    monkeypatch.setattr(qgis_iface, "addPluginToMenu", add, raising=False)
    monkeypatch.setattr(qgis_iface, "removePluginMenu", remove, raising=False)
    monkeypatch.setattr(qgis_iface, "addCustomActionForLayerType", mock.Mock(), raising=False)
    monkeypatch.setattr(qgis_iface, "removeCustomActionForLayerType", mock.Mock(), raising=False)
    plugin = classFactory(qgis_iface)
    plugin.initGui()
    assert add.call_args[0][1].text() == "Install FERS dependencies"
    plugin.unload()
    assert remove.call_args[0][1] is add.call_args[0][1]


def test_dialog_installs_onnxruntime_into_a_folder_that_qgis_python_can_import(tmp_path, qgis_app):
    """The real thing: pip (from the package index or the local wheel cache) into an empty private folder."""
    from qgis.PyQt.QtCore import QEventLoop, QTimer

    from fers_qgis.gui.dependencies_dialog import DependenciesDialog

    site_dir = str(tmp_path / "site")
    dialog = DependenciesDialog(site_dir)
    loop = QEventLoop()
    dialog.process.finished.connect(loop.quit)
    QTimer.singleShot(300_000, loop.quit)
    dialog.start()
    loop.exec_()
    if dialog.process.exitCode() != 0 and "No matching distribution" in dialog.log.toPlainText():
        pytest.skip("no package index or wheel cache reachable for onnxruntime")
    assert dialog.process.exitCode() == 0, dialog.log.toPlainText()[-2000:]
    assert "installed" in dialog.status.text()
    assert sorted(name for name in os.listdir(site_dir) if not name.endswith(".dist-info")) == ["bin", "onnxruntime"]
    # System Python without the venv: only the private folder can provide onnxruntime there.
    probe = subprocess.run(["/usr/bin/python3", "-s", "-c",
                            f"import sys; sys.path.append({site_dir!r}); import onnxruntime, numpy; "
                            "print(onnxruntime.__version__, numpy.__version__)"],
                           capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split()[0] == dependencies.ONNXRUNTIME_REQUIREMENT.split("==")[1]
