"""The dependencies dialog built against PyQt6 (the Qt of QGIS 4), which no Debian package provides.

PyQt6 comes from PyPI into a venv of its own, cached under ~/.cache/fers-qgis (never the project's venv, whose
PyQt5 QGIS needs). A stand-in ``qgis.PyQt`` that re-exports PyQt6, as QGIS 4's does, lets the plugin's dialog
module import unchanged; the dialog then installs, cancels and reports offscreen with a fake pip.
"""
import fcntl
import os
import subprocess
import sys

import pytest

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# PyQt6 6.12's Qt wheels need a newer glibc than Debian 12's; 6.11 is the newest that installs here.
PYQT6_REQUIREMENTS = ("PyQt6==6.11.0", "PyQt6-Qt6==6.11.2", "PyQt6-sip==13.13.0")
CACHE = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "fers-qgis")
QT_MODULES = ("QtCore", "QtGui", "QtWidgets")

SCRIPT = """
import os, shutil, sys
from PyQt6.QtCore import QEventLoop, QTimer
from PyQt6.QtWidgets import QApplication
from fers_qgis import dependencies
from fers_qgis.gui.dependencies_dialog import DependenciesDialog
from tests import fake_onnxruntime

work = sys.argv[1]
app = QApplication([])


def dialog_with_fake_pip(outcome):
    fake = fake_onnxruntime.write_fake_python(os.path.join(work, "python-" + outcome), outcome,
                                              dependencies.PINNED_VERSION)
    dependencies.python_executable = lambda: fake
    return DependenciesDialog(os.path.join(work, outcome, "site"))


def run_to_the_end(dialog):
    loop = QEventLoop()
    dialog.process.finished.connect(loop.quit)
    QTimer.singleShot(60_000, loop.quit)
    dialog.start()
    loop.exec()


dialog = dialog_with_fake_pip("succeed")
dialog.show()
run_to_the_end(dialog)
assert dependencies.installed_version(dialog.site_dir) == dependencies.PINNED_VERSION, dialog.log.toPlainText()
assert "can use it now" in dialog.status.text() and dialog.progress.value() == dialog.progress.maximum()
assert not dialog.grab().isNull()
dialog.start()
assert not dialog.running and "already installed" in dialog.status.text()

dialog = dialog_with_fake_pip("hang")
fake_onnxruntime.write_installed(dialog.site_dir, "1.31.0")
dialog.start()
while "Downloading" not in dialog.log.toPlainText():
    assert dialog.process.waitForReadyRead(10_000)
dialog.reject()
assert not dialog.running and dialog.status.text().startswith("Cancelled")
assert dependencies.installed_version(dialog.site_dir) == "1.31.0"

QTimer.singleShot(0, dialog.reject)
dialog.exec()
print("dialog works with PyQt6")
"""


def pyqt6_python() -> str:
    """The cached venv's interpreter, creating the venv on first use; skips when PyPI cannot provide PyQt6."""
    venv = os.path.join(CACHE, "pyqt6-" + "-".join(requirement.split("==")[1] for requirement in PYQT6_REQUIREMENTS))
    python = os.path.join(venv, "bin", "python")
    stamp = os.path.join(venv, ".installed")
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, "pyqt6.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another checkout's test run may be creating the same venv
        if not os.path.exists(stamp):
            subprocess.run([sys.executable, "-m", "venv", "--clear", venv], check=True, capture_output=True)
            completed = subprocess.run([python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
                                        *PYQT6_REQUIREMENTS], capture_output=True, text=True, timeout=600)
            if completed.returncode != 0:
                last_line = (completed.stderr.strip().splitlines() or ["no output"])[-1]
                pytest.skip(f"PyQt6 could not be installed from PyPI into {venv}: {last_line}")
            open(stamp, "w").close()
    return python


def write_qgis_pyqt_stand_in(folder: str) -> None:
    """``qgis.PyQt.QtX`` modules that re-export PyQt6's, which is what QGIS 4's ``qgis.PyQt`` does."""
    package = os.path.join(folder, "qgis", "PyQt")
    os.makedirs(package)
    for path in (os.path.join(folder, "qgis", "__init__.py"), os.path.join(package, "__init__.py")):
        open(path, "w").close()
    for module in QT_MODULES:
        with open(os.path.join(package, module + ".py"), "w") as handle:
            handle.write(f"from PyQt6.{module} import *  # noqa: F401,F403\n")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the cached PyQt6 venv is laid out for Linux")
def test_dependencies_dialog_runs_on_pyqt6(tmp_path):
    python = pyqt6_python()
    stand_in = tmp_path / "stand_in"
    write_qgis_pyqt_stand_in(str(stand_in))
    environment = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONDONTWRITEBYTECODE="1")
    # -I: nothing from the environment or user site; the stand-in and the checkout are put first explicitly.
    completed = subprocess.run([python, "-I", "-c", f"import sys; sys.path[:0] = {[str(stand_in), REPOSITORY]!r}\n"
                                + SCRIPT, str(tmp_path)], capture_output=True, text=True, env=environment, timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "dialog works with PyQt6" in completed.stdout
