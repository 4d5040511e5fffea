"""Installing onnxruntime for QGIS's Python: private folder, pinned version, nothing else installed."""
import os
import shutil
import subprocess
import sys

import pytest

from fers_qgis import dependencies
from tests import fake_onnxruntime
from tests.helpers import PLUGIN_DIR

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
    loop.exec()
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


OLDER_VERSION = "1.31.0"


@pytest.fixture
def dialog_with_fake_pip(tmp_path, qgis_app, monkeypatch):
    """Make a dialog for a private folder holding an older onnxruntime, whose "python" is a fake pip ending as
    asked; the folder's contents before the run come with it."""
    from fers_qgis.gui.dependencies_dialog import DependenciesDialog

    site_dir = str(tmp_path / "profile" / "site")
    fake_onnxruntime.write_installed(site_dir, OLDER_VERSION)

    def make(outcome):
        fake = fake_onnxruntime.write_fake_python(str(tmp_path / "python"), outcome, dependencies.PINNED_VERSION)
        monkeypatch.setattr(dependencies, "python_executable", lambda: fake)
        return DependenciesDialog(site_dir), fake_onnxruntime.folder_contents(site_dir)
    return make


def wait_for_output(dialog, text):
    while text not in dialog.log.toPlainText():
        assert dialog.process.waitForReadyRead(10_000), dialog.log.toPlainText()


@pytest.mark.parametrize("stop", ["cancel", "close"])
def test_cancel_or_close_during_pip_keeps_the_previous_install(dialog_with_fake_pip, stop):
    dialog, before = dialog_with_fake_pip("hang")
    dialog.show()
    dialog.start()
    wait_for_output(dialog, "Downloading")  # the fake pip has written part of the package by now
    assert dialog.progress.value() == 2 and "downloading" in dialog.status.text()
    dialog.cancel() if stop == "cancel" else dialog.reject()
    assert not dialog.running
    assert fake_onnxruntime.folder_contents(dialog.site_dir) == before
    assert os.listdir(os.path.dirname(dialog.site_dir)) == ["site"]  # no staging folder left
    assert dialog.status.text() == f"Cancelled: the installed onnxruntime {OLDER_VERSION} is unchanged."
    assert dialog.isVisible()  # closing while pip runs cancels it and says so; the next Close closes
    dialog.reject()
    assert not dialog.isVisible()


def test_failed_pip_keeps_the_previous_install(dialog_with_fake_pip):
    from qgis.PyQt.QtCore import QEventLoop

    dialog, before = dialog_with_fake_pip("fail")
    loop = QEventLoop()
    dialog.process.finished.connect(loop.quit)
    dialog.start()
    loop.exec()
    assert fake_onnxruntime.folder_contents(dialog.site_dir) == before
    assert os.listdir(os.path.dirname(dialog.site_dir)) == ["site"]
    assert dialog.status.text().startswith(f"pip failed (exit code 1); the installed onnxruntime {OLDER_VERSION} is "
                                           f"unchanged")


def test_second_run_with_the_pinned_version_present_downloads_nothing(dialog_with_fake_pip):
    dialog, _ = dialog_with_fake_pip("hang")
    shutil.rmtree(dialog.site_dir)
    fake_onnxruntime.write_installed(dialog.site_dir, dependencies.PINNED_VERSION)
    dialog.start()
    assert not dialog.running and dialog.log.toPlainText() == ""
    assert f"onnxruntime {dependencies.PINNED_VERSION} is already installed" in dialog.status.text()
    assert dialog.progress.value() == dialog.progress.maximum()


def test_module_installed_after_a_failed_import_is_found_without_restart(tmp_path):
    """QGIS's situation in a fresh Python: the plugin puts the (missing) private folder on sys.path at start, a FERS
    run fails for lack of onnxruntime, the dialog installs it with the real pip from a local wheel, and the next
    FERS run finds it."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    fake_onnxruntime.write_wheel(str(wheels), dependencies.PINNED_VERSION)
    site_dir = str(tmp_path / "profile" / "fers_qgis" / "site")
    script = f"""
import sys
from qgis.PyQt.QtCore import QEventLoop
from qgis.PyQt.QtWidgets import QApplication
from fers_qgis import dependencies
from fers_qgis.core.onnx_runtime import MissingDependency, import_onnxruntime
from fers_qgis.gui.dependencies_dialog import DependenciesDialog

dependencies.add_to_path({site_dir!r})  # what the plugin does when QGIS starts
try:
    import_onnxruntime()
    sys.exit("onnxruntime was importable before the install")
except MissingDependency:
    pass
app = QApplication([])
dialog = DependenciesDialog({site_dir!r})
loop = QEventLoop()
dialog.process.finished.connect(loop.quit)
dialog.start()
loop.exec()
print(dialog.status.text())
print(import_onnxruntime().__version__)
"""
    # Debian's Python and pip, as QGIS uses them, without the venv (whose real onnxruntime would hide the point);
    # pip reads only the local wheel folder.
    environment = dict(os.environ, PYTHONPATH=os.path.dirname(PLUGIN_DIR), QT_QPA_PLATFORM="offscreen",
                       PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheels))
    completed = subprocess.run(["/usr/bin/python3", "-s", "-c", script], capture_output=True, text=True,
                               env=environment, timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    status, version = completed.stdout.strip().splitlines()[-2:]
    assert status.endswith("can use it now, without restarting QGIS.")
    assert version == dependencies.PINNED_VERSION
    assert sorted(os.listdir(os.path.dirname(site_dir))) == ["site"]


def test_a_swap_that_cannot_finish_restores_the_previous_install(tmp_path, monkeypatch):
    """On Windows a folder whose libraries are loaded cannot be renamed: the previous install must come back."""
    site_dir = str(tmp_path / "site")
    fake_onnxruntime.write_installed(site_dir, OLDER_VERSION)
    staging_dir = dependencies.new_staging_dir(site_dir)
    fake_onnxruntime.write_installed(staging_dir, dependencies.PINNED_VERSION)
    rename = os.rename

    def rename_all_but_the_staging_folder(source, target):
        if source == staging_dir:
            raise PermissionError(13, "The process cannot access the file")
        rename(source, target)
    monkeypatch.setattr(os, "rename", rename_all_but_the_staging_folder)
    with pytest.raises(PermissionError):
        dependencies.swap_in(staging_dir, site_dir)
    assert dependencies.installed_version(site_dir) == OLDER_VERSION
    assert sorted(os.listdir(tmp_path)) == sorted(["site", os.path.basename(staging_dir)])
