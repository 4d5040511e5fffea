"""Plugins > FERS > Install FERS dependencies: runs pip for onnxruntime and shows its log as it comes."""
import os

from qgis.PyQt.QtCore import QProcess
from qgis.PyQt.QtGui import QFont
from qgis.PyQt.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QVBoxLayout

from .. import dependencies


class DependenciesDialog(QDialog):
    """Installs onnxruntime into the plugin-private folder, streaming pip's output into the dialog."""

    def __init__(self, site_dir: str, parent=None):
        super().__init__(parent)
        self.site_dir = site_dir
        self.setWindowTitle("Install FERS dependencies")
        self.resize(720, 420)
        self.status = QLabel()
        self.log = QPlainTextEdit(readOnly=True)
        self.log.setFont(QFont("monospace"))
        self.buttons = QDialogButtonBox(QDialogButtonBox.Close)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for widget in (self.status, self.log, self.buttons):
            layout.addWidget(widget)
        self.process = QProcess(self)
        self.process.setProcessChannelMode(QProcess.MergedChannels)
        self.process.readyReadStandardOutput.connect(self._append_output)
        self.process.finished.connect(self._finished)

    def start(self) -> None:
        """Start pip, or explain why it cannot run."""
        python = dependencies.python_executable()
        if python is None:
            self.status.setText("No Python interpreter was found next to QGIS; install onnxruntime with your "
                                "system's package manager or pip instead.")
            return
        os.makedirs(self.site_dir, exist_ok=True)
        arguments = dependencies.pip_install_arguments(self.site_dir)
        self.status.setText(f"Installing {dependencies.ONNXRUNTIME_REQUIREMENT} into {self.site_dir} ...")
        self.log.appendPlainText(" ".join([python, *arguments]))
        self.process.start(python, arguments)

    def _append_output(self) -> None:
        text = bytes(self.process.readAllStandardOutput()).decode(errors="replace")
        self.log.appendPlainText(text.rstrip())

    def _finished(self, exit_code: int, _status) -> None:
        if exit_code == 0:
            dependencies.add_to_path(self.site_dir)
            self.status.setText("onnxruntime is installed: the FERS algorithms are ready to use.")
        else:
            self.status.setText(f"pip failed (exit code {exit_code}); the log below says why.")
