"""How long-running core jobs report progress and learn about cancellation, without knowing about QGIS."""
from typing import Optional

from .errors import Cancelled


class Progress:
    """Progress sink; the default does nothing. Adapters (QGIS feedback, a terminal bar) override the hooks."""

    def set_fraction(self, fraction: float) -> None:
        """Report overall progress in [0, 1]."""

    def info(self, message: str) -> None:
        """Report a line of information for the log."""

    def is_cancelled(self) -> bool:
        return False

    def check_cancelled(self) -> None:
        """Raise Cancelled if the user asked to stop; called between blocks."""
        if self.is_cancelled():
            raise Cancelled("Cancelled by the user.")


class Stage(Progress):
    """A slice [start, end] of a parent's progress, so multi-pass jobs report one monotone 0..1 scale."""

    def __init__(self, parent: Optional[Progress], start: float, end: float):
        self._parent = parent or Progress()
        self._start = start
        self._end = end

    def set_fraction(self, fraction: float) -> None:
        self._parent.set_fraction(self._start + (self._end - self._start) * min(max(fraction, 0.0), 1.0))

    def info(self, message: str) -> None:
        self._parent.info(message)

    def is_cancelled(self) -> bool:
        return self._parent.is_cancelled()
