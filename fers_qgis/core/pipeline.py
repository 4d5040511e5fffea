"""A detection job as one sequence of passes, and the scheduler that runs them on this machine.

Each job (``detection.RxJob``, ``enhancement.FersJob``) is checked and planned first, before any file is written;
its ``run(scheduler, progress)`` is then the job's only sequence of steps, written once. A step is one of three
kinds, the calls of a scheduler:

- ``reduce(name, opener, plan, merge, progress)``: per-window work that needs only its window (statistics of its
  pixels), merged in any order;
- ``rasters(name, opener, plan, bands, merge, progress)``: per-window work that writes the window's blocks into
  named temporary rasters (``bands``: name -> band count) and may return statistics to merge; returns the
  finished rasters (``workspace.RasterFile``) and the merged statistics;
- ``once(name, work, progress)``: one call, e.g. the writer of the output.

``opener(progress)`` is a context manager giving the per-window function, so a worker opens the raster (and
loads the model) once for all the windows it is given. The openers and the job are plain data, so the same steps
run in order here (``LocalScheduler``) or as tasks on a Dask cluster (``fers_qgis.cli.split.DaskScheduler``):
one sequence, two schedulers.
"""
from dataclasses import dataclass
from typing import Callable, ContextManager, Dict, List, Optional, Sequence, Tuple, TypeVar

from .memory import release_free_memory
from .progress import Progress
from .raster import RasterInfo, Window, block_windows
from .workspace import RasterFile, Workspace

T = TypeVar("T")
Opener = Callable[[Progress], ContextManager[Callable]]
Merge = Callable[[T, T], T]


@dataclass(frozen=True)
class WindowPlan:
    """How a pass cuts the raster: windows (first_row, rows, first_column, columns) of ``bytes_per_pixel`` per
    pixel within a memory budget, or ``fixed`` windows that do not depend on it (FERS feature blocks). A scheduler
    grouping windows into bands of rows keeps each band at least ``min_rows`` tall. An ``in_order`` pass is one
    call over the whole raster that carries state from row to row (local RX), so it cannot be split."""

    info: RasterInfo
    bytes_per_pixel: int
    budget: int
    fixed: Optional[Tuple[Window, ...]] = None
    min_rows: int = 1
    in_order: bool = False

    def windows(self, budget: Optional[int] = None) -> List[Window]:
        """The windows within ``budget`` (default: the job's); an in-order pass has one, the whole raster."""
        if self.in_order:
            return [(0, self.info.height, 0, self.info.width)]
        if self.fixed is not None:
            return list(self.fixed)
        return block_windows(self.info, self.bytes_per_pixel, self.budget if budget is None else budget)


def merged(merge: Optional[Merge], values: Sequence):
    """The values merged in order (None without a merge)."""
    if merge is None or not values:
        return None
    result = values[0]
    for value in values[1:]:
        result = merge(result, value)
    return result


class LocalScheduler:
    """Runs a job's passes in this process, window after window, with progress and cancel between windows. Its
    temporary rasters live in a hidden folder next to the output, deleted on exit (also on error or cancel)."""

    def __init__(self, output_path: str):
        self.workspace = Workspace(output_path)
        self._names = 0

    def __enter__(self) -> "LocalScheduler":
        return self

    def __exit__(self, *_) -> None:
        self.workspace.close()

    def reduce(self, name: str, opener: Opener, plan: WindowPlan, merge: Merge, progress: Progress):
        """Run ``work(window)`` for each window and merge the results."""
        return self._each_window(opener, plan, merge, progress)

    def rasters(self, name: str, opener: Opener, plan: WindowPlan, bands: Dict[str, int],
                merge: Optional[Merge], progress: Progress) -> Tuple[Dict[str, RasterFile], object]:
        """Run ``work(window, sinks)`` for each window, writing into temporary rasters; merge what it returns."""
        self._names += 1
        sinks = {key: self.workspace.raster(f"{name}{self._names}-{index}", plan.info, count)
                 for index, (key, count) in enumerate(bands.items())}
        result = self._each_window(opener, plan, merge, progress, sinks)
        return {key: sink.finish() for key, sink in sinks.items()}, result

    def write(self, name: str, opener: Opener, plan: WindowPlan, sinks: Dict[str, object], progress: Progress
              ) -> None:
        """Run ``work(window, sinks)`` for each window, writing into the job's own outputs (here only)."""
        self._each_window(opener, plan, None, progress, sinks)

    @staticmethod
    def _each_window(opener: Opener, plan: WindowPlan, merge: Optional[Merge], progress: Progress, *arguments):
        """``work(window, *arguments)`` window after window, results merged as they come; cancel between windows."""
        windows = plan.windows()
        result = None
        with opener(progress) as work:
            for index, window in enumerate(windows):
                progress.check_cancelled()
                value = work(window, *arguments)
                result = value if index == 0 or merge is None else merge(result, value)
                release_free_memory()
                progress.set_fraction((index + 1) / len(windows))
        return result if merge is not None else None

    def once(self, name: str, work: Callable[[Progress], T], progress: Progress) -> T:
        """``work(progress)``, here."""
        return work(progress)
