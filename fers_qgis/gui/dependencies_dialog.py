"""Plugins > FERS > Install FERS dependencies: runs pip for onnxruntime and shows its steps and log as they come.

Written for Qt5 and Qt6 alike (QGIS 3 and 4): scoped enums and ``exec()`` only.
"""
import sys

from qgis.PyQt.QtCore import QProcess
from qgis.PyQt.QtGui import QFont
from qgis.PyQt.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QProgressBar, QVBoxLayout

from .. import dependencies

# The lines of pip's output that start its steps (pip prints no running download percentage into a pipe).
PIP_STEPS = (("Collecting", "looking up onnxruntime on the package index"),
             ("Downloading", "downloading"),
             ("Installing collected packages", "unpacking into a staging folder"))


class DependenciesDialog(QDialog):
    """Installs onnxruntime into the plugin-private folder, streaming pip's output into the dialog.

    pip fills a staging folder that replaces the private folder only when pip succeeds; Cancel (or closing the
    window) while pip runs stops it and keeps the previous installation as it was.
    """

    def __init__(self, site_dir: str, parent=None):
        super().__init__(parent)
        self.site_dir = site_dir
        self.staging_dir = None
        self.cancelled = False
        self.setWindowTitle("Install FERS dependencies")
        self.resize(720, 420)
        self.status = QLabel(wordWrap=True)
        self.progress = QProgressBar(minimum=0, maximum=len(PIP_STEPS) + 1, value=0)
        self.progress.setFormat("Step %v of %m")
        self.log = QPlainTextEdit(readOnly=True)
        self.log.setFont(QFont("monospace"))
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close |
                                        QDialogButtonBox.StandardButton.Cancel)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for widget in (self.status, self.progress, self.log, self.buttons):
            layout.addWidget(widget)
        self.process = QProcess(self)
        self.process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        self.process.readyReadStandardOutput.connect(self._append_output)
        self.process.finished.connect(self._finished)
        self.process.errorOccurred.connect(self._failed_to_start)
        self._show_buttons(running=False)

    @property
    def running(self) -> bool:
        return self.process.state() != QProcess.ProcessState.NotRunning

    def start(self) -> None:
        """Start pip, or say why there is nothing to do or why it cannot run."""
        version = dependencies.installed_version(self.site_dir)
        if version == dependencies.PINNED_VERSION:
            dependencies.add_to_path(self.site_dir)
            self.progress.setValue(self.progress.maximum())
            self.status.setText(f"onnxruntime {version} is already installed in {self.site_dir}; nothing was "
                                f"downloaded. The FERS algorithms can use it. (To reinstall it, delete that folder "
                                f"and run this again.)")
            return
        python = dependencies.python_executable()
        if python is None:
            self.status.setText("No Python interpreter was found next to QGIS; install onnxruntime with your "
                                "system's package manager or pip instead.")
            return
        self.cancelled = False
        self.staging_dir = dependencies.new_staging_dir(self.site_dir)
        arguments = dependencies.pip_install_arguments(self.staging_dir)
        self.status.setText(f"Installing {dependencies.ONNXRUNTIME_REQUIREMENT} with pip: starting ...")
        self.progress.setValue(0)
        self.log.appendPlainText(" ".join([python, *arguments]))
        self._show_buttons(running=True)
        self.process.start(python, arguments)

    def cancel(self) -> None:
        """Stop pip; the staging folder is dropped and the previous installation stays."""
        if self.running:
            self.cancelled = True
            self.process.kill()
            self.process.waitForFinished(10_000)

    def reject(self) -> None:
        """Close, or while pip runs cancel it first (the dialog stays open to say so)."""
        if self.running:
            self.cancel()
        else:
            super().reject()

    def _show_buttons(self, running: bool) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setVisible(running)
        self.buttons.button(QDialogButtonBox.StandardButton.Close).setVisible(not running)

    def _append_output(self) -> None:
        text = bytes(self.process.readAllStandardOutput()).decode(errors="replace")
        self.log.appendPlainText(text.rstrip())
        for number, (start, step) in enumerate(PIP_STEPS, start=1):
            if any(line.lstrip().startswith(start) for line in text.splitlines()) and number > self.progress.value():
                self.progress.setValue(number)
                self.status.setText(f"Installing {dependencies.ONNXRUNTIME_REQUIREMENT} with pip: {step} ...")

    def _finished(self, exit_code: int, exit_status) -> None:
        self._show_buttons(running=False)
        staging_dir, self.staging_dir = self.staging_dir, None
        unchanged = self._previous_installation()
        if self.cancelled or exit_status != QProcess.ExitStatus.NormalExit or exit_code != 0:
            dependencies.discard(staging_dir)
            self.progress.setValue(0)
            if self.cancelled:
                self.status.setText(f"Cancelled: {unchanged}.")
            else:
                self.status.setText(f"pip failed (exit code {exit_code}); {unchanged}. The log below says why.")
            return
        try:
            dependencies.swap_in(staging_dir, self.site_dir)
        except OSError as error:
            dependencies.discard(staging_dir)
            self.status.setText(f"The new installation could not replace {self.site_dir} ({error.strerror}); "
                                f"{unchanged}. Close QGIS and delete that folder, then run this again.")
            return
        self.progress.setValue(self.progress.maximum())
        version = dependencies.installed_version(self.site_dir)
        loaded = sys.modules.get(dependencies.PACKAGE)
        if loaded is not None and getattr(loaded, "__version__", version) != version:
            self.status.setText(f"onnxruntime {version} is installed, but this QGIS session already runs "
                                f"onnxruntime {loaded.__version__}: restart QGIS to use the new one.")
        else:
            self.status.setText(f"onnxruntime {version} is installed: the FERS algorithms can use it now, without "
                                f"restarting QGIS.")

    def _failed_to_start(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._show_buttons(running=False)
            dependencies.discard(self.staging_dir)
            self.staging_dir = None
            self.status.setText(f"pip could not be started ({self.process.errorString()}); install onnxruntime "
                                f"with your system's package manager or pip instead.")

    def _previous_installation(self) -> str:
        version = dependencies.installed_version(self.site_dir)
        return f"the installed onnxruntime {version} is unchanged" if version else "nothing was installed"
