"""The bridge between QGIS Processing feedback and the core's Progress, shared by every FERS algorithm."""
from typing import Optional

from qgis.core import QgsProcessingFeedback

from ..core.progress import Progress


class FeedbackProgress(Progress):
    """A core Progress that reports to a QgsProcessingFeedback and reads its cancel flag."""

    def __init__(self, feedback: Optional[QgsProcessingFeedback]):
        # Algorithms may be run without feedback (alg.run in scripts); a private one keeps the calls uniform.
        self._feedback = feedback if feedback is not None else QgsProcessingFeedback()

    def set_fraction(self, fraction: float) -> None:
        self._feedback.setProgress(100.0 * min(max(fraction, 0.0), 1.0))

    def info(self, message: str) -> None:
        self._feedback.pushInfo(message)

    def is_cancelled(self) -> bool:
        return self._feedback.isCanceled()
