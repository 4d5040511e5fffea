"""One large raster on a Dask cluster (``fers detect --split``): the core's jobs on a scheduler of Dask tasks.

``RxJob`` and ``FersJob`` (``fers_qgis.core``) are each one sequence of passes (see ``core.pipeline``); this
module is the second scheduler of those passes. Each pass's windows (or FERS feature blocks) are grouped into
bands of whole rows, one task per band, so each task's output is a rectangle:

- a reduction (background or model-band statistics) is one task per band merged as a binary tree of tasks;
- a pass that writes rasters (FERS cubes, score maps) writes one file per band, read back as one raster of
  those row pieces, with the task's statistics merged as a tree;
- the output is written by one task through the core's RasterWriter, so it appears complete or not at all.

Band files live in a hidden folder beside the output, deleted at the end: the output folder must be on a file
system every worker sees. The per-pixel arithmetic is the core's; only the order of the statistics' sums differs,
so scores agree with the single-process run to rounding. Tasks are retried when a worker dies.
"""
import copy
import logging
import math
import os
import time
import uuid
from collections import OrderedDict
from functools import partial
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .batch import TASK_RETRIES
from ..core.detection import DetectionSummary, RxJob, RxOptions
from ..core.enhancement import FersJob, FersOptions, check_fers_options
from ..core.errors import InputError
from ..core.pipeline import Merge, Opener, T, WindowPlan, merged
from ..core.progress import Progress
from ..core.raster import RasterInfo, Window
from ..core.workspace import RasterFile, RowPiece, TempRaster, Workspace

# Tasks per worker and pass: enough for the scheduler to balance uneven bands, few enough that the per-task cost
# (opening the raster, loading the model) stays small (docs/SCALING.md).
TASKS_PER_WORKER = 4

LOG = logging.getLogger(__name__)

# A row band of a pass: rows [start, stop) and the engine windows inside it.
Band = Tuple[int, int, List[Window]]


def row_bands(windows: Sequence[Window], tasks: int, min_rows: int = 1) -> List[Band]:
    """Group row-major windows into about ``tasks`` bands of whole window rows, each at least ``min_rows`` tall
    (when the raster is)."""
    by_row: "OrderedDict[int, List[Window]]" = OrderedDict()
    for window in windows:
        by_row.setdefault(window[0], []).append(window)
    starts = list(by_row)
    window_rows = by_row[starts[0]][0][1]
    per_band = max(math.ceil(len(starts) / max(1, tasks)), math.ceil(min_rows / window_rows))
    bands = []
    for index in range(0, len(starts), per_band):
        members = [window for start in starts[index:index + per_band] for window in by_row[start]]
        bands.append((members[0][0], max(row + rows for row, rows, _, _ in members), members))
    return bands


class _BandWriter:
    """The temporary file of one row band, renamed into place when complete, so a retried task never reads a
    half-written band."""

    def __init__(self, path: str, like: RasterInfo, band: Band, bands: int):
        self.path = path
        self.first_row, stop, _ = band
        self.rows = stop - self.first_row
        self._partial = f"{path}.{uuid.uuid4().hex[:8]}.partial"
        self._raster = TempRaster(self._partial, like.width, self.rows, bands)

    def write(self, first_row: int, values_bhw, valid_hw, first_column: int = 0) -> None:
        self._raster.write(first_row - self.first_row, values_bhw, valid_hw, first_column)

    def finish(self) -> RowPiece:
        self._raster.finish()
        os.replace(self._partial, self.path)
        return RowPiece(self.path, self.first_row, self.rows)


def planning_budget(info: RasterInfo, bytes_per_pixel: int, budget: int, tasks: int) -> int:
    """The memory budget that windows are planned with: the job's, or less when the raster would otherwise give
    fewer windows than tasks (smaller windows change no score, only how the work is cut)."""
    return max(1, min(budget, info.width * info.height * bytes_per_pixel // max(1, tasks)))


def tree_reduce(submit, futures: list, merge):
    """Merge futures pairwise, level by level, into one future: depth log2(n), each merge a task."""
    while len(futures) > 1:
        futures = [submit(merge, *futures[index:index + 2]) if index + 1 < len(futures) else futures[index]
                   for index in range(0, len(futures), 2)]
    return futures[0]


def _reduce_task(opener: Opener, windows: Sequence[Window], merge: Merge):
    """One band of a reduction: the merged results of its windows."""
    with opener(Progress()) as work:
        return merged(merge, [work(window) for window in windows])


def _rasters_task(opener: Opener, like: RasterInfo, band: Band, bands: Dict[str, int], paths: Dict[str, str],
                  merge: Optional[Merge]) -> Tuple[Dict[str, RowPiece], object]:
    """One band of a pass that writes rasters: its band files, and the merged results of its windows."""
    writers = {name: _BandWriter(paths[name], like, band, count) for name, count in bands.items()}
    with opener(Progress()) as work:
        results = [work(window, writers) for window in band[2]]
    return {name: writer.finish() for name, writer in writers.items()}, merged(merge, results)


def _merged_copy(merge: Merge, first, second):
    """Merge without touching the inputs: Dask may keep and reuse them."""
    return merge(copy.deepcopy(first), second)


def _first(pair):
    return pair[0]


def _second(pair):
    return pair[1]


class DaskScheduler:
    """Runs a core job's passes as Dask tasks over bands of rows (see ``core.pipeline`` for the calls)."""

    def __init__(self, client, output_path: str, tasks: Optional[int] = None, show_progress: bool = False,
                 min_band_rows: Optional[int] = None):
        self.client = client
        self.tasks = tasks or TASKS_PER_WORKER * max(1, len(client.scheduler_info()["workers"]))
        self.submit = partial(client.submit, retries=TASK_RETRIES, pure=False)
        self.workspace = Workspace(output_path)
        self.show_progress = show_progress
        self.min_band_rows = min_band_rows
        self._names = 0

    def __enter__(self) -> "DaskScheduler":
        return self

    def __exit__(self, *_) -> None:
        self.workspace.close()

    def wait(self, futures: list, stage: str) -> list:
        """The futures' results, with Dask's progress bar on the terminal when asked for; logs the stage's time."""
        started = time.perf_counter()
        if self.show_progress:
            from distributed import progress
            progress(futures)
        results = self.client.gather(futures)
        LOG.info("%s: %.2f s", stage, time.perf_counter() - started)
        return results

    def _bands(self, plan: WindowPlan) -> List[Band]:
        """The plan's windows in about ``tasks`` bands of rows (windows made smaller where they would be too few:
        that changes no score, only how the work is cut)."""
        if plan.in_order:
            raise InputError("This pass reads the whole raster in order and cannot be split over workers.")
        windows = plan.windows(planning_budget(plan.info, plan.bytes_per_pixel, plan.budget, self.tasks))
        min_rows = plan.min_rows if self.min_band_rows is None else self.min_band_rows
        return row_bands(windows, self.tasks, min(min_rows, plan.info.height))

    def reduce(self, name: str, opener: Opener, plan: WindowPlan, merge: Merge, progress: Progress):
        futures = [self.submit(_reduce_task, opener, band[2], merge) for band in self._bands(plan)]
        return self.wait([tree_reduce(self.submit, futures, partial(_merged_copy, merge))],
                         f"{name}, {len(futures)} tasks and their tree")[0]

    def rasters(self, name: str, opener: Opener, plan: WindowPlan, bands: Dict[str, int],
                merge: Optional[Merge], progress: Progress) -> Tuple[Dict[str, RasterFile], object]:
        self._names += 1
        prefix = self.workspace.file(f"{name}{self._names}")
        futures = [self.submit(_rasters_task, opener, plan.info, band, bands,
                               {key: f"{prefix}-{key_index}_{index}.f32" for key_index, key in enumerate(bands)},
                               merge)
                   for index, band in enumerate(self._bands(plan))]
        files = self.wait([self.submit(_first, future) for future in futures], f"{name}, {len(futures)} tasks")
        result = None
        if merge is not None:
            result = self.wait([tree_reduce(self.submit, [self.submit(_second, future) for future in futures],
                                            partial(_merged_copy, merge))], f"{name}: statistics tree")[0]
        rasters = {key: RasterFile(tuple(item[key] for item in files), plan.info.width, plan.info.height, count)
                   for key, count in bands.items()}
        return rasters, result

    def once(self, name: str, work: Callable[[Progress], T], progress: Progress) -> T:
        return self.wait([self.submit(work, Progress())], f"{name}, 1 task")[0]


LOCAL_REFUSAL = ("Split mode runs global RX on every cube; local RX takes its background from a window around "
                 "each pixel: run it without --split.")


def split_rx(client, input_path: str, output_path: str, options: RxOptions = RxOptions(),
             mask_path: Optional[str] = None, tasks: Optional[int] = None, show_progress: bool = False
             ) -> DetectionSummary:
    """Global RX of one raster as a task graph on a Dask cluster; the output equals ``detect_rx``'s."""
    if options.detector != "global":
        raise InputError(LOCAL_REFUSAL)
    job = RxJob.plan(input_path, output_path, options, mask_path)
    with DaskScheduler(client, output_path, tasks, show_progress) as scheduler:
        return job.run(scheduler)


def split_fers(client, input_path: str, output_path: str, model_path: str, options: FersOptions = FersOptions(),
               mask_path: Optional[str] = None, tasks: Optional[int] = None, show_progress: bool = False,
               min_band_rows: Optional[int] = None) -> DetectionSummary:
    """A FERS detector of one raster as a task graph on a Dask cluster; the output equals ``detect_fers``'s.

    ``min_band_rows`` (default: the feature pass's own, a few spatial tiles) bounds how thin a band may be."""
    check_fers_options(options)
    if options.detector == "fers-local":
        raise InputError(LOCAL_REFUSAL)
    job = FersJob.plan(input_path, output_path, model_path, options, mask_path)
    with DaskScheduler(client, output_path, tasks, show_progress, min_band_rows) as scheduler:
        return job.run(scheduler)


def split_job(client, job, tasks: Optional[int] = None, show_progress: bool = False) -> DetectionSummary:
    """Run a batch DetectionJob (one raster) in split mode."""
    if isinstance(job.options, RxOptions):
        return split_rx(client, job.input_path, job.output_path, job.options, job.mask_path, tasks, show_progress)
    return split_fers(client, job.input_path, job.output_path, job.resolved_model(), job.options, job.mask_path,
                      tasks, show_progress)
