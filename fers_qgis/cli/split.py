"""One large raster on a Dask cluster (``fers detect --split``): the engine's passes as a task graph over row bands.

Every pass takes the single-process engine's own windows (or FERS feature blocks) and gives each task a band of
whole rows of them, so each task's output is a rectangle:

- global RX: pass-1 statistics per band (count, mean, cross-products; ``rx.BackgroundStatistics``) merged as a
  binary tree of tasks; the whitening on the client; scores per band;
- FERS: pass-1 model-band statistics per band (count, sums, min/max) merged as a tree; feature blocks with their
  halo (the engine's ``feature_block``; spatial tiles are recomputed only where two bands share one) written per
  band with their RX statistics, merged as a tree; scores per band of the cubes;
- one task writes the output from the bands' score files (mosaicked by a VRT), through the core's RasterWriter, so
  the output appears complete or not at all.

Band files live in a hidden folder beside the output, deleted at the end: the output folder must be on a file
system every worker sees. The per-pixel arithmetic is the engine's; only the order of the statistics' sums differs,
so scores agree with the single-process run to rounding. Tasks are retried when a worker dies. The tasks call the
engine's own pieces (enhancement's scene, feature blocks and temporary rasters included) rather than copies of them.
"""
import copy
import dataclasses
import logging
import math
import os
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from functools import partial
from typing import Dict, List, Optional, Sequence, Tuple
from xml.sax.saxutils import escape

from .batch import TASK_RETRIES
from ..core import rx
from ..core.detection import (DetectionSummary, RxOptions, add_block_statistics, check_rx_job, check_statistics,
                              global_block_scores, open_rx_reader, score_band_name)
from ..core.enhancement import (FersOptions, ModelBandStatistics, _check_options, _detector_cubes,
                                _FeatureBlocks, _prepare, _Scene, _score_label, _TempRaster, _Workspace,
                                feature_block, needed_branches, scan_windows, write_final_scores)
from ..core.errors import InputError
from ..core.onnx_runtime import load_model_set
from ..core.progress import Progress
from ..core.raster import BlockReader, RasterInfo, RasterWriter, Window, block_windows, describe_raster

# Tasks per worker and pass: enough for the scheduler to balance uneven bands, few enough that the per-task cost
# (opening the raster, loading the model) stays small (docs/SCALING.md).
TASKS_PER_WORKER = 4
# FERS bands are at least this many spatial tiles tall: tiles straddling two bands are computed by both.
FERS_MIN_BAND_TILES = 8

LOG = logging.getLogger(__name__)

# A row band of a pass: rows [start, stop) and the engine windows inside it.
Band = Tuple[int, int, List[Window]]


@dataclass(frozen=True)
class BandFile:
    """A finished band file: rows [first_row, first_row + rows) of a map; min/max of its valid values."""

    path: str
    first_row: int
    rows: int
    minimum: float
    maximum: float


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
    """An uncompressed Float32 file of one row band (NaN where invalid), renamed into place when complete, so a
    retried task never reads a half-written band."""

    def __init__(self, path: str, like: RasterInfo, band: Band, bands: int):
        self.path = path
        self.first_row, stop, _ = band
        self.rows = stop - self.first_row
        self._partial = f"{path}.{uuid.uuid4().hex[:8]}.partial.tif"
        self._raster = _TempRaster(self._partial, dataclasses.replace(like, height=self.rows), bands)

    def write(self, first_row: int, values_bhw, valid_hw, first_column: int = 0) -> None:
        self._raster.write(first_row - self.first_row, values_bhw, valid_hw, first_column)

    def finish(self) -> BandFile:
        self._raster.close()
        os.replace(self._partial, self.path)
        return BandFile(self.path, self.first_row, self.rows, self._raster.minimum, self._raster.maximum)


def write_mosaic(path: str, like: RasterInfo, bands: int, files: Sequence[BandFile]) -> str:
    """A VRT of ``like``'s size made of the band files, each at its rows (explicit windows: no georeferencing
    needed)."""
    sources = "".join(
        f'<SimpleSource><SourceFilename relativeToVRT="0">{escape(item.path)}</SourceFilename>'
        f'<SourceBand>{{band}}</SourceBand><SrcRect xOff="0" yOff="0" xSize="{like.width}" ySize="{item.rows}"/>'
        f'<DstRect xOff="0" yOff="{item.first_row}" xSize="{like.width}" ySize="{item.rows}"/></SimpleSource>'
        for item in files)
    bands_xml = "".join(f'<VRTRasterBand dataType="Float32" band="{band}">{sources.format(band=band)}'
                        f'</VRTRasterBand>' for band in range(1, bands + 1))
    with open(path, "w") as handle:
        handle.write(f'<VRTDataset rasterXSize="{like.width}" rasterYSize="{like.height}">{bands_xml}</VRTDataset>')
    return path


def planning_budget(info: RasterInfo, bytes_per_pixel: int, budget: int, tasks: int) -> int:
    """The memory budget that windows are planned with: the job's, or less when the raster would otherwise give
    fewer windows than tasks (smaller windows change no score, only how the work is cut)."""
    return max(1, min(budget, info.width * info.height * bytes_per_pixel // max(1, tasks)))


def _merged(first, second):
    """Statistics of two disjoint sets of pixels (the inputs stay untouched: Dask may keep and reuse them)."""
    return copy.deepcopy(first).merge(second)


def _merged_by_name(first: Dict[str, rx.BackgroundStatistics], second: Dict[str, rx.BackgroundStatistics]):
    return {name: _merged(first[name], second[name]) for name in first}


def tree_reduce(submit, futures: list, merge):
    """Merge futures pairwise, level by level, into one future: depth log2(n), each merge a task."""
    while len(futures) > 1:
        futures = [submit(merge, *futures[index:index + 2]) if index + 1 < len(futures) else futures[index]
                   for index in range(0, len(futures), 2)]
    return futures[0]


def _rx_statistics_task(input_path: str, bands: Tuple[int, ...], mask_path: Optional[str], undeclared_fill: bool,
                        band: Band) -> rx.BackgroundStatistics:
    reader = BlockReader(describe_raster(input_path), bands, mask_path, undeclared_fill)
    statistics = rx.BackgroundStatistics(len(bands))
    try:
        for window in band[2]:
            add_block_statistics(statistics, *reader.read(*window))
    finally:
        reader.close()
    return statistics


@dataclass(frozen=True)
class _ScenePlan:
    """How the client's scene reads the raster (its bad-band scan done once, by the client), for the workers."""

    matrix: object
    bands: Tuple[int, ...]
    band_names: Tuple[str, ...]
    wavelengths_nm: Tuple[Optional[float], ...]

    @classmethod
    def of(cls, scene: _Scene) -> "_ScenePlan":
        return cls(scene.matrix, scene.reader.bands, scene.band_names, scene.wavelengths_nm)


def _reopened_scene(input_path: str, mask_path: Optional[str], undeclared_fill: bool, plan: _ScenePlan) -> _Scene:
    """The client's scene in a worker, without scanning its bands again."""
    info = describe_raster(input_path)
    return _Scene(info, BlockReader(info, plan.bands, mask_path, undeclared_fill), plan.matrix, plan.band_names,
                  plan.wavelengths_nm)


def _scan_task(input_path: str, mask_path: Optional[str], undeclared_fill: bool, plan: _ScenePlan, band: Band
               ) -> ModelBandStatistics:
    scene = _reopened_scene(input_path, mask_path, undeclared_fill, plan)
    try:
        statistics = ModelBandStatistics.of_block(scene, band[2][0], *scene.reader.read(*band[2][0]))
        for window in band[2][1:]:
            statistics.merge(ModelBandStatistics.of_block(scene, window, *scene.reader.read(*window)))
    finally:
        scene.reader.close()
    return statistics


def _feature_task(input_path: str, model_path: str, use_gpu: bool, mask_path: Optional[str], undeclared_fill: bool,
                  plan: _ScenePlan,
                  band_statistics: ModelBandStatistics, cube_names: Sequence[str], budget: int, band: Band,
                  paths: Dict[str, str]) -> Tuple[Dict[str, BandFile], Dict[str, rx.BackgroundStatistics]]:
    model = load_model_set(model_path, use_gpu)  # loaded once per worker process (the core keeps it)
    scene = _reopened_scene(input_path, mask_path, undeclared_fill, plan)
    try:
        band_statistics.normalise(scene, model)
        features = _FeatureBlocks(scene, model, *needed_branches(cube_names), budget)
        statistics = {name: rx.BackgroundStatistics(model.bands) for name in cube_names}
        writers = {name: _BandWriter(paths[name], scene.info, band, model.bands) for name in cube_names}
        for first_row, rows, first_column, columns in band[2]:
            cubes, valid_hw = feature_block(features, (first_row, first_row + rows, first_column,
                                                       first_column + columns), cube_names, statistics)
            for name, writer in writers.items():
                writer.write(first_row, cubes[name], valid_hw, first_column)
        return {name: writer.finish() for name, writer in writers.items()}, statistics
    finally:
        scene.reader.close()


def _score_task(raster_path: str, bands: Tuple[int, ...], mask_path: Optional[str], undeclared_fill: bool,
                band: Band, background: Tuple, path: str) -> BandFile:
    """Global RX scores of one band of a raster (the input, or a FERS cube) against the scene's background."""
    mean, whitening = background
    reader = BlockReader(describe_raster(raster_path), bands, mask_path, undeclared_fill)
    try:
        writer = _BandWriter(path, reader.info, band, 1)
        for window in band[2]:
            cube_bhw, valid_hw = reader.read(*window)
            writer.write(window[0], global_block_scores(cube_bhw, mean, whitening)[None], valid_hw, window[2])
        return writer.finish()
    finally:
        reader.close()


def _write_output_task(output_path: str, like: RasterInfo, label: str, mosaics: Sequence[str],
                       ranges: Sequence[Tuple[float, float]], scale: bool, budget: int) -> None:
    """The one writer: the final map from the score mosaics (product rule and scaling as the engine does)."""
    readers = [BlockReader(describe_raster(path), (1,)) for path in mosaics]
    try:
        with RasterWriter(output_path, like, [label]) as writer:
            write_final_scores(readers, list(ranges), writer, scale, budget, None)
    finally:
        for reader in readers:
            reader.close()


def _first(pair):
    return pair[0]


def _second(pair):
    return pair[1]


class _SplitRun:
    """What the passes of one split run share: the client, the workspace, progress display and task retries."""

    def __init__(self, client, output_path: str, tasks: Optional[int], show_progress: bool):
        self.client = client
        self.tasks = tasks or TASKS_PER_WORKER * max(1, len(client.scheduler_info()["workers"]))
        self.submit = partial(client.submit, retries=TASK_RETRIES, pure=False)
        self.workspace = _Workspace(output_path)
        self.show_progress = show_progress

    def wait(self, futures: list, stage: str) -> list:
        """The futures' results, with Dask's progress bar on the terminal when asked for; logs the stage's time."""
        started = time.perf_counter()
        if self.show_progress:
            from distributed import progress
            progress(futures)
        results = self.client.gather(futures)
        LOG.info("%s: %.2f s", stage, time.perf_counter() - started)
        return results

    def file(self, name: str) -> str:
        return os.path.join(self.workspace.folder, name)

    def background(self, statistics: rx.BackgroundStatistics, channels: int, info: RasterInfo):
        """The checked background (mean, whitening), sent once to every worker."""
        check_statistics(statistics, channels, info)
        return self.client.scatter((statistics.mean, rx.whitening_matrix(statistics.covariance)), broadcast=True)

    def scores(self, raster_path: str, bands: Tuple[int, ...], mask_path: Optional[str], undeclared_fill: bool,
               bands_of_rows: List[Band], background, name: str) -> List[BandFile]:
        return self.wait([self.submit(_score_task, raster_path, bands, mask_path, undeclared_fill, band, background,
                                      self.file(f"{name}{index}.tif")) for index, band in enumerate(bands_of_rows)],
                         f"scores, {len(bands_of_rows)} tasks")

    def write_output(self, output_path: str, like: RasterInfo, label: str, maps: Sequence[List[BandFile]],
                     scale: bool, budget: int) -> None:
        mosaics = [write_mosaic(self.file(f"map{index}.vrt"), like, 1, files) for index, files in enumerate(maps)]
        ranges = [(min(item.minimum for item in files), max(item.maximum for item in files)) for files in maps]
        self.wait([self.submit(_write_output_task, output_path, like, label, mosaics, ranges, scale, budget)],
                  "output, 1 task")


def split_rx(client, input_path: str, output_path: str, options: RxOptions = RxOptions(),
             mask_path: Optional[str] = None, tasks: Optional[int] = None, show_progress: bool = False
             ) -> DetectionSummary:
    """Global RX of one raster as a task graph on a Dask cluster; the output equals ``detect_rx``'s."""
    started = time.perf_counter()
    if options.detector != "global":
        raise InputError("Split mode runs global RX and FERS; local RX takes its background from a window around "
                         "each pixel: run it without --split.")
    info, bands = check_rx_job(input_path, output_path, options, mask_path)
    budget = options.memory_budget_mb * 2**20
    sizing = open_rx_reader(info, bands, options, mask_path, budget, Progress())
    bands, bytes_per_pixel = sizing.bands, sizing.bytes_per_pixel
    sizing.close()
    fill = options.undeclared_fill
    run = _SplitRun(client, output_path, tasks, show_progress)
    try:
        windows = block_windows(info, bytes_per_pixel, planning_budget(info, bytes_per_pixel, budget, run.tasks))
        bands_of_rows = row_bands(windows, run.tasks)
        partial_statistics = [run.submit(_rx_statistics_task, input_path, bands, mask_path, fill, band)
                              for band in bands_of_rows]
        statistics = run.wait([tree_reduce(run.submit, partial_statistics, _merged)],
                              f"statistics, {len(partial_statistics)} tasks and their tree")[0]
        background = run.background(statistics, len(bands), info)
        scores = run.scores(input_path, bands, mask_path, fill, bands_of_rows, background, "scores")
        run.write_output(output_path, info, score_band_name(options), [scores], False, budget)
    finally:
        run.workspace.close()
    return DetectionSummary(output_path, statistics.count, len(bands), time.perf_counter() - started)


def split_fers(client, input_path: str, output_path: str, model_path: str, options: FersOptions = FersOptions(),
               mask_path: Optional[str] = None, tasks: Optional[int] = None, show_progress: bool = False,
               min_band_rows: Optional[int] = None) -> DetectionSummary:
    """A FERS detector of one raster as a task graph on a Dask cluster; the output equals ``detect_fers``'s.

    ``min_band_rows`` (default: FERS_MIN_BAND_TILES spatial tiles) bounds how thin a feature band may be."""
    started = time.perf_counter()
    _check_options(options)
    if options.detector == "fers-local":
        raise InputError("Split mode runs global RX on the FERS cubes; FERS with local RX takes its background from "
                         "a window around each pixel: run it without --split.")
    budget = int(options.memory_budget_mb * 2**20)
    model, scene = _prepare(input_path, [output_path], model_path, mask_path, options.use_gpu,
                            options.undeclared_fill, budget, Progress())
    fill = options.undeclared_fill
    scene_plan = _ScenePlan.of(scene)
    info = scene.info
    fusion = options.fusion or model.metadata.fusion
    cube_names = _detector_cubes(options.detector, fusion)
    if min_band_rows is None:
        min_band_rows = FERS_MIN_BAND_TILES * model.tile_size
    run = _SplitRun(client, output_path, tasks, show_progress)
    tasks = run.tasks
    try:
        scan_budget = planning_budget(info, scene.reader.bytes_per_pixel, budget, tasks)
        scan = [run.submit(_scan_task, input_path, mask_path, fill, scene_plan, band)
                for band in row_bands(scan_windows(scene, scan_budget), tasks)]
        band_statistics = run.wait([tree_reduce(run.submit, scan, _merged)],
                                   f"model-band statistics, {len(scan)} tasks and their tree")[0]
        band_statistics.normalise(scene, model)  # refuses a raster without valid pixels

        plan = _FeatureBlocks(scene, model, *needed_branches(cube_names), budget).blocks
        blocks = [(r0, r1 - r0, c0, c1 - c0) for r0, r1, c0, c1 in plan]
        feature_bands = row_bands(blocks, tasks, min(min_band_rows, info.height))
        shared_statistics = client.scatter(band_statistics, broadcast=True)
        features = [run.submit(_feature_task, input_path, model_path, options.use_gpu, mask_path, fill, scene_plan,
                               shared_statistics,
                               cube_names, budget, band, {name: run.file(f"cube{cube}_{index}.tif")
                                                          for cube, name in enumerate(cube_names)})
                    for index, band in enumerate(feature_bands)]
        files = run.wait([run.submit(_first, future) for future in features], f"features, {len(features)} tasks")
        statistics = run.wait([tree_reduce(run.submit, [run.submit(_second, future) for future in features],
                                           _merged_by_name)], "cube statistics tree")[0]

        score_maps = []
        for cube, name in enumerate(cube_names):
            cube_path = write_mosaic(run.file(f"cube{cube}.vrt"), info, model.bands, [item[name] for item in files])
            cube_reader = BlockReader(describe_raster(cube_path), tuple(range(1, model.bands + 1)))
            cube_budget = planning_budget(info, cube_reader.bytes_per_pixel, budget, tasks)
            cube_bands = row_bands(block_windows(cube_reader.info, cube_reader.bytes_per_pixel, cube_budget), tasks)
            cube_reader.close()
            background = run.background(statistics[name], model.bands, info)
            score_maps.append(run.scores(cube_path, cube_reader.bands, None, False, cube_bands, background,
                                         f"scores{cube}_"))
        run.write_output(output_path, info, _score_label(options.detector, fusion, options), score_maps,
                         options.scale_scores, budget)
    finally:
        scene.reader.close()
        run.workspace.close()
    return DetectionSummary(output_path, scene.valid_pixels, model.bands, time.perf_counter() - started)


def split_job(client, job, tasks: Optional[int] = None, show_progress: bool = False) -> DetectionSummary:
    """Run a batch DetectionJob (one raster) in split mode."""
    if isinstance(job.options, RxOptions):
        return split_rx(client, job.input_path, job.output_path, job.options, job.mask_path, tasks, show_progress)
    return split_fers(client, job.input_path, job.output_path, job.resolved_model(), job.options, job.mask_path,
                      tasks, show_progress)
