"""The RX detection job: raster in, anomaly-score GeoTIFF out, in bounded memory; and the scoring passes and
output writer that FERS shares with it.

Everything the Processing algorithm, the command line and the demo run goes through ``RxJob`` (``detect_rx`` on
this machine, ``fers_qgis.cli.split`` on a Dask cluster).
"""
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Callable, Dict, Iterator, List, Optional, Protocol, Sequence, Tuple, Union

import numpy as np

from . import linalg, rx
from .errors import InputError
from .memory import release_free_memory
from .pipeline import LocalScheduler, WindowPlan
from .progress import Progress, Stage
from .output import RasterWriter, check_output_path
from .raster import (BlockReader, RasterInfo, Window, block_windows, describe_raster, iter_blocks, row_chunks,
                     select_bands)
from .validity import ValidityOptions, assess_scene
from .workspace import RasterFile, RasterFileReader

DETECTORS = ("global", "local")


@dataclass(frozen=True)
class RxOptions:
    """Settings of an RX run. Bands: 1-based numbers, or a typed selection such as "1-50" or "400-1000 nm"
    (``spectral.parse_band_selection``); None means all bands. ``undeclared_fill``: pixels with one value in every
    band are fill (see ``validity``)."""

    detector: str = "global"
    inner_window: int = 3
    outer_window: int = 15
    bands: Union[None, str, Tuple[int, ...]] = None
    memory_budget_mb: int = 256
    undeclared_fill: bool = True
    local_background: rx.LocalBackgroundRule = rx.LocalBackgroundRule()


class LocalWindows(Protocol):
    """What local RX needs of a job's options (RxOptions and FersOptions have it)."""

    inner_window: int
    outer_window: int
    local_background: rx.LocalBackgroundRule


@dataclass
class DetectionSummary:
    """What a finished job reports back."""

    output_path: str
    valid_pixels: int
    bands_used: int
    seconds: float


def check_windows(inner: int, outer: int) -> None:
    """Local RX windows must be odd (centred on their pixel) and nested (the background is the ring between)."""
    if inner < 1 or outer < 3 or inner % 2 == 0 or outer % 2 == 0:
        raise InputError(f"Window sizes must be odd so that each window is centred on its pixel (inner >= 1, "
                         f"outer >= 3); got inner {inner} and outer {outer}.")
    if outer <= inner:
        raise InputError(f"The outer window ({outer}) must be larger than the inner window ({inner}): the "
                         f"background is the ring between them.")


def _check_options(options: RxOptions) -> None:
    if options.detector not in DETECTORS:
        raise InputError(f"Unknown detector {options.detector!r}; choose one of {', '.join(DETECTORS)}.")
    if options.detector == "local":
        check_windows(options.inner_window, options.outer_window)
    if options.memory_budget_mb < 16:
        raise InputError("The memory budget must be at least 16 MB.")


def add_block_statistics(statistics: rx.BackgroundStatistics, cube_bhw: np.ndarray, valid_hw: np.ndarray) -> None:
    """Add the valid pixels of one window to the background statistics, in chunks of bounded memory."""
    for rows in row_chunks(*valid_hw.shape, cube_bhw.shape[0]):
        statistics.add(cube_bhw[:, rows][:, valid_hw[rows]].T)


def check_statistics(statistics: rx.BackgroundStatistics, channels: int, info: RasterInfo) -> None:
    """Refuse scenes whose background statistics cannot define RX."""
    if statistics.count == 0:
        raise InputError(f"{info.path} has no valid pixels: every pixel is nodata, NaN or masked out.")
    if statistics.count <= channels:
        raise InputError(
            f"RX needs more valid pixels than bands to estimate a covariance: this raster has "
            f"{statistics.count} valid pixels and {channels} bands. Use a larger area or fewer bands.")
    if not np.any(np.diag(statistics.covariance) > 0):
        raise InputError("Every selected band is constant over the valid pixels: there is nothing to detect.")


def check_rx_job(input_path: str, output_path: str, options: RxOptions, mask_path: Optional[str]
                 ) -> Tuple[RasterInfo, Tuple[int, ...]]:
    """Every check of an RX job that needs no pixel pass; returns the raster's description and the bands used."""
    _check_options(options)
    info = describe_raster(input_path)
    bands = select_bands(info, options.bands)
    if len(bands) < 2:
        raise InputError(f"RX compares spectra and needs at least 2 bands; {info.path} gives {len(bands)}.")
    check_output_path(output_path, [input_path, mask_path])
    return info, bands


def open_rx_reader(info: RasterInfo, bands: Sequence[int], options: RxOptions, mask_path: Optional[str],
                   budget: int, progress: Progress, gather: Optional[rx.BackgroundStatistics] = None
                   ) -> BlockReader:
    """Decide the scene's bad bands and fill (reported in the log) and return a reader of its good bands.

    ``gather`` collects, during that scan, the background statistics of the pixels valid in every band: when the
    reader reads every scanned band (no bad band), those are its statistics and need no pass of their own."""
    observe = None if gather is None else (lambda cube_bhw, valid_hw: add_block_statistics(gather, cube_bhw,
                                                                                           valid_hw))
    validity = assess_scene(info, bands, mask_path, ValidityOptions(options.undeclared_fill), budget, progress,
                            observe)
    validity.report(progress, os.path.basename(info.path))
    if len(validity.good_bands) < 2:
        raise InputError(f"RX compares spectra and needs at least 2 bands; {info.path} has "
                         f"{len(validity.good_bands)} band left once its bad bands are left out.")
    return BlockReader(info, validity.good_bands, mask_path, options.undeclared_fill)


def score_band_name(options: RxOptions) -> str:
    """The output band's name: what the scores are."""
    return "RX global anomaly score" if options.detector == "global" else (
        f"RX local anomaly score (windows {options.inner_window}/{options.outer_window})")


@dataclass(frozen=True)
class Background:
    """The RX background of a scene: its mean, whitening matrix (its columns: the covariance rank) and size."""

    mean: np.ndarray
    whitening: np.ndarray
    count: int

    @classmethod
    def of(cls, statistics: rx.BackgroundStatistics, channels: int, info: RasterInfo) -> "Background":
        """The checked background of these statistics (an InputError where RX is not defined)."""
        check_statistics(statistics, channels, info)
        return cls(statistics.mean, rx.whitening_matrix(statistics.covariance), statistics.count)


# The name of the one raster a scoring pass writes.
SCORES = "scores"


@contextmanager
def scoring(open_reader: Callable[[], Union[BlockReader, RasterFileReader]], background: Background,
            local: Optional[LocalWindows], budget: int, progress: Progress) -> Iterator[Callable]:
    """A scoring pass over what ``open_reader`` reads: global RX scores of each window, or (``local``: the
    windows and rule of local RX) local RX over the whole raster, row strip after row strip, into ``SCORES``."""
    reader = open_reader()
    try:
        def score(window: Window, sinks: Dict[str, object]) -> None:
            if local is not None:
                write_local_scores(reader, background, local, sinks[SCORES], budget, progress)
                return
            cube_bhw, valid_hw = reader.read(*window)
            sinks[SCORES].write(window[0], global_block_scores(cube_bhw, background.mean, background.whitening)[None],
                                valid_hw, window[2])
        yield score
    finally:
        reader.close()


def scoring_plan(info: RasterInfo, bytes_per_pixel: int, local: bool, budget: int) -> WindowPlan:
    """The windows of a scoring pass: any for global RX; the whole raster, in order, for local RX."""
    return WindowPlan(info, bytes_per_pixel, budget, in_order=local)


def scaled(scores: np.ndarray, minimum: float, maximum: float) -> np.ndarray:
    """Min-max scaling to [0, 1]; a constant map becomes zeros."""
    span = maximum - minimum
    return (scores - minimum) / span if span > 0 else np.zeros_like(scores)


def write_score_output(output_path: str, like: RasterInfo, label: str, maps: Sequence[RasterFile], scale: bool,
                       budget: int, progress: Progress) -> None:
    """The job's one output: the score map, or the product of the min-max scaled maps (product rule), optionally
    scaled to 0-1, written through RasterWriter (complete or not at all)."""
    ranges = [item.value_range(budget) for item in maps]
    readers = [item.reader() for item in maps]
    try:
        with RasterWriter(output_path, like, [label]) as writer:
            write_final_scores(readers, ranges, writer, scale, budget, progress)
    finally:
        for reader in readers:
            reader.close()


def write_final_scores(readers: List[RasterFileReader], ranges: List[Tuple[float, float]], writer: RasterWriter,
                       scale: bool, budget: int, progress: Optional[Progress]) -> None:
    """Product of the min-max scaled maps (product rule) or the one map, optionally min-max scaled to 0-1.

    ``readers`` read the score maps (NaN where invalid), ``ranges`` are their (minimum, maximum) valid values."""
    info = readers[0].info
    windows = block_windows(info, 8 * 4 * len(readers), budget)

    def combined_blocks(stage):
        """(window, scores_hw, valid_hw): the one map as it is, or the product of the scaled maps."""
        for window, scores_bhw, valid_hw in iter_blocks(readers[0], windows, stage):
            if len(readers) == 1:
                yield window, scores_bhw[0], valid_hw
                continue
            product_hw = scaled(scores_bhw[0], *ranges[0])
            for other, value_range in zip(readers[1:], ranges[1:]):
                other_bhw, other_valid = other.read(*window)
                product_hw = product_hw * scaled(other_bhw[0], *value_range)
                valid_hw = valid_hw & other_valid
            yield window, product_hw, valid_hw

    value_range = ranges[0]
    if len(readers) > 1 and scale:
        # The product's own range, needed to scale it, comes from a first look at the combined map.
        product_min, product_max = np.inf, -np.inf
        for _, scores_hw, valid_hw in combined_blocks(Stage(progress, 0.0, 0.5)):
            if valid_hw.any():
                product_min = min(product_min, float(scores_hw[valid_hw].min()))
                product_max = max(product_max, float(scores_hw[valid_hw].max()))
        value_range = (product_min, product_max)
    for (first_row, _, first_column, _), scores_hw, valid_hw in combined_blocks(
            Stage(progress, 0.5 if scale else 0.0, 1.0)):
        writer.write(first_row, (scaled(scores_hw, *value_range) if scale else scores_hw)[None], valid_hw,
                     first_column)


@dataclass
class RxJob:
    """An RX detection, checked and planned (bands, bad bands and fill decided): the data every pass needs, and the
    job's one sequence of passes (``run``; see ``pipeline``)."""

    input_path: str
    output_path: str
    options: RxOptions
    mask_path: Optional[str]
    info: RasterInfo
    bands: Tuple[int, ...]                                  # the good bands read
    bytes_per_pixel: int
    budget: int
    started: float
    scanned: Optional[rx.BackgroundStatistics] = None       # the background, when the bad-band scan saw it all

    @classmethod
    def plan(cls, input_path: str, output_path: str, options: RxOptions = RxOptions(),
             mask_path: Optional[str] = None, progress: Optional[Progress] = None) -> "RxJob":
        """Every check, then the bad-band scan (which also gathers the background when no band is left out)."""
        started = time.perf_counter()
        info, bands = check_rx_job(input_path, output_path, options, mask_path)
        budget = options.memory_budget_mb * 2**20
        scanned = rx.BackgroundStatistics(len(bands))
        reader = open_rx_reader(info, bands, options, mask_path, budget, progress or Progress(), scanned)
        reader.close()
        # Without bad bands the scan saw exactly the reader's valid pixels: its statistics save a pass.
        return cls(input_path, output_path, options, mask_path, info, reader.bands, reader.bytes_per_pixel, budget,
                   started, scanned if reader.bands == tuple(bands) else None)

    def reader(self) -> BlockReader:
        """A reader of the good bands; the caller closes it."""
        return BlockReader(self.info, self.bands, self.mask_path, self.options.undeclared_fill)

    @contextmanager
    def statistics_of_windows(self, progress: Progress) -> Iterator[Callable]:
        """Pass 1: the background statistics of a window's valid pixels."""
        reader = self.reader()
        try:
            def statistics(window: Window) -> rx.BackgroundStatistics:
                block = rx.BackgroundStatistics(len(self.bands))
                add_block_statistics(block, *reader.read(*window))
                return block
            yield statistics
        finally:
            reader.close()

    def run(self, scheduler, progress: Optional[Progress] = None) -> DetectionSummary:
        """Background statistics, scores, output: the passes of the job on ``scheduler``."""
        progress = progress or Progress()
        local = self.options if self.options.detector == "local" else None
        statistics = self.scanned or scheduler.reduce(
            "background statistics", self.statistics_of_windows, WindowPlan(self.info, self.bytes_per_pixel,
                                                                            self.budget),
            rx.BackgroundStatistics.merge, Stage(progress, 0.3, 0.45))
        background = Background.of(statistics, len(self.bands), self.info)
        progress.info(f"Background from {background.count} valid pixels, {len(self.bands)} bands "
                      f"(covariance rank {background.whitening.shape[1]}).")
        maps, _ = scheduler.rasters(
            "scores", partial(scoring, self.reader, background, local, self.budget),
            scoring_plan(self.info, self.bytes_per_pixel, local is not None, self.budget), {SCORES: 1}, None,
            Stage(progress, 0.45, 0.95))
        scheduler.once("output", partial(write_score_output, self.output_path, self.info,
                                         score_band_name(self.options), [maps[SCORES]], False, self.budget),
                       Stage(progress, 0.95, 1.0))
        return DetectionSummary(self.output_path, background.count, len(self.bands),
                                time.perf_counter() - self.started)


def detect_rx(input_path: str, output_path: str, options: RxOptions = RxOptions(),
              mask_path: Optional[str] = None, progress: Optional[Progress] = None) -> DetectionSummary:
    """Score every pixel of a raster with global or local RX and write a single-band Float32 GeoTIFF.

    Invalid pixels (nodata, NaN/Inf, masked) are left out of the statistics and written as nodata. All input
    checks happen before the output file is created; an error or a cancel leaves no output behind.
    """
    progress = progress or Progress()
    job = RxJob.plan(input_path, output_path, options, mask_path, Stage(progress, 0.0, 0.3))
    with LocalScheduler(output_path) as scheduler:
        return job.run(scheduler, progress)


def global_block_scores(cube_bhw: np.ndarray, mean: np.ndarray, whitening: np.ndarray) -> np.ndarray:
    """Global RX scores (rows, columns) of one window, in chunks of bounded memory."""
    scores_hw = np.empty(cube_bhw.shape[1:])
    for rows in row_chunks(*scores_hw.shape, cube_bhw.shape[0]):
        pixels_nc = cube_bhw[:, rows].reshape(cube_bhw.shape[0], -1).T
        scores_hw[rows] = rx.rx_scores(pixels_nc, mean, whitening).reshape(scores_hw[rows].shape)
    return scores_hw


def local_window_components(info: RasterInfo, options, rank: int) -> int:
    """Principal components local RX models for these windows, or an InputError if the ring is too small."""
    outer = min(options.outer_window, info.height) * min(options.outer_window, info.width)
    ring_pixels = outer - min(options.inner_window, info.height) * min(options.inner_window, info.width)
    rule = options.local_background
    components = rule.components(rank, ring_pixels)
    if ring_pixels < rule.minimum_ring_pixels(components):
        raise InputError(
            f"The local background window holds {ring_pixels} pixels, too few for {components} spectral "
            f"dimensions: enlarge the outer window (now {options.outer_window}) or select fewer bands.")
    return components


def local_strip_rows(width: int, statistics_channels: int, budget: int) -> int:
    """Output rows per local RX strip: a quarter of the budget holds the strip's ring statistics."""
    return max(1, budget // 4 // (8 * width * statistics_channels))


def whitened_rows(reader, mean: np.ndarray, directions: np.ndarray, components: int, budget: int
                  ) -> Iterator[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The raster's rows in the whitened space, top to bottom, in whole-width strips that follow the file's
    blocks (each block decoded once): (leading components (rows, columns, components), global score of the other
    components (rows, columns), validity (rows, columns)) per strip."""
    windows = block_windows(reader.info, reader.bytes_per_pixel, budget, whole_rows=True)
    for (_, rows, _, width), cube_bhw, valid_hw in iter_blocks(reader, windows):
        leading_hwk = np.empty((rows, width, components))
        residual_hw = np.empty((rows, width))
        for chunk in row_chunks(rows, width, len(reader.bands) + directions.shape[1]):
            pixels_nc = cube_bhw[:, chunk].reshape(cube_bhw.shape[0], -1).T
            whitened_nk = linalg.matmul(pixels_nc - mean, directions)
            leading_hwk[chunk] = whitened_nk[:, :components].reshape(-1, width, components)
            rest = whitened_nk[:, components:]
            residual_hw[chunk] = np.einsum("nk,nk->n", rest, rest).reshape(-1, width)
        yield leading_hwk, residual_hw, valid_hw.copy()


def write_local_scores(reader: BlockReader, background: Background, options: "LocalWindows", writer, budget: int,
                       progress: Progress) -> None:
    """Second pass of local RX, in the space whitened by the global background (see rx.LocalBackgroundRule).

    Row strips within the memory budget: each image row is read and whitened once (the rows the next strip's
    windows share are carried over), ring statistics come from running sums over the leading principal
    components, and the other components are scored against the global background when the rule says so.
    """
    info = reader.info
    rule = options.local_background
    whitening = background.whitening
    components = local_window_components(info, options, whitening.shape[1])
    outer = (min(options.outer_window, info.height), min(options.outer_window, info.width))
    inner = (min(options.inner_window, info.height), min(options.inner_window, info.width))
    # Leading principal components first, copied: numpy hands reversed (negative-stride) matrices to no BLAS.
    directions = np.ascontiguousarray(whitening[:, ::-1])
    if not rule.global_residual:
        directions = directions[:, :components]
    progress.info(f"Local RX models the {components} leading principal components of the background in each "
                  f"ring" + (f" and the other {directions.shape[1] - components} globally." if
                             directions.shape[1] > components else "."))
    statistics_channels = 1 + components + components * (components + 1) // 2
    strip_rows = local_strip_rows(info.width, statistics_channels, budget)
    pixels_per_solve = max(256, budget // 8 // (8 * 3 * (components + 1) ** 2))
    column_starts = tuple(rx.window_start(np.arange(info.width), size, info.width) for size in (outer[1], inner[1]))
    strips = whitened_rows(reader, background.mean, directions, components, budget // 2)
    # Input rows [carried_first, carried_first + len(valid_hw)) already read: the leading components, the global
    # score of the other components, validity. The next strip's windows share some of them.
    carried_first, valid_hw = 0, np.zeros((0, info.width), dtype=bool)
    leading_hwk, residual_hw = np.zeros((0, info.width, components)), np.zeros((0, info.width))
    for first_row in range(0, info.height, strip_rows):
        progress.check_cancelled()
        rows = np.arange(first_row, min(first_row + strip_rows, info.height))
        row_starts = tuple(rx.window_start(rows, size, info.height) for size in (outer[0], inner[0]))
        top, stop = int(row_starts[0][0]), int(row_starts[0][-1]) + outer[0]
        kept = slice(top - carried_first, None)
        leading_hwk, residual_hw, valid_hw = leading_hwk[kept], residual_hw[kept], valid_hw[kept]
        carried_first = top
        while carried_first + len(valid_hw) < stop:
            leading_hwk, residual_hw, valid_hw = (np.concatenate(pair) for pair in zip(
                (leading_hwk, residual_hw, valid_hw), next(strips)))
        region = slice(0, stop - top)
        ring = rx.ring_statistics(leading_hwk[region], valid_hw[region], (row_starts[0] - top, row_starts[1] - top),
                                  column_starts, outer, inner, budget // 8 // 8)
        ring = ring.reshape(-1, statistics_channels)
        centre = leading_hwk[rows - top].reshape(-1, components)
        scores = residual_hw[rows - top].ravel()
        for start in range(0, len(scores), pixels_per_solve):
            batch = slice(start, start + pixels_per_solve)
            scores[batch] += rx.local_rx_scores(centre[batch], ring[batch], rule)
        writer.write(first_row, scores.reshape(1, len(rows), info.width), valid_hw[rows - top])
        del ring, centre, scores
        release_free_memory()
        progress.set_fraction((rows[-1] + 1) / info.height)
