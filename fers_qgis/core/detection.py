"""The RX detection job: raster in, anomaly-score GeoTIFF out, in bounded memory.

Everything the Processing algorithm, the evaluation CLI and the demo run goes through ``detect_rx``.
"""
import time
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from . import rx
from .errors import InputError
from .progress import Progress, Stage
from .raster import (BlockReader, RasterInfo, RasterWriter, block_windows, check_output_path, describe_raster,
                     iter_blocks, row_chunks, select_bands)

DETECTORS = ("global", "local")


@dataclass(frozen=True)
class RxOptions:
    """Settings of an RX run. Band numbers are 1-based; None means all bands."""

    detector: str = "global"
    inner_window: int = 3
    outer_window: int = 15
    bands: Optional[Tuple[int, ...]] = None
    memory_budget_mb: int = 256


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


def scene_statistics(reader: BlockReader, budget_bytes: int, progress: Optional[Progress]
                     ) -> rx.BackgroundStatistics:
    """First pass: background mean and covariance over every valid pixel of the selected bands."""
    info = reader.info
    channels = len(reader.bands)
    statistics = rx.BackgroundStatistics(channels)
    windows = block_windows(info, reader.bytes_per_pixel, budget_bytes)
    for _, cube_bhw, valid_hw in iter_blocks(reader, windows, progress):
        for rows in row_chunks(*valid_hw.shape, channels):
            statistics.add(cube_bhw[:, rows][:, valid_hw[rows]].T)
    return statistics


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


def detect_rx(input_path: str, output_path: str, options: RxOptions = RxOptions(),
              mask_path: Optional[str] = None, progress: Optional[Progress] = None) -> DetectionSummary:
    """Score every pixel of a raster with global or local RX and write a single-band Float32 GeoTIFF.

    Invalid pixels (nodata, NaN/Inf, masked) are left out of the statistics and written as nodata. All input
    checks happen before the output file is created; an error or a cancel leaves no output behind.
    """
    started = time.perf_counter()
    progress = progress or Progress()
    _check_options(options)
    info = describe_raster(input_path)
    bands = select_bands(info, options.bands)
    if len(bands) < 2:
        raise InputError(f"RX compares spectra and needs at least 2 bands; {info.path} gives {len(bands)}.")
    check_output_path(output_path, [input_path, mask_path])
    reader = BlockReader(info, bands, mask_path)
    budget = options.memory_budget_mb * 2**20

    statistics = scene_statistics(reader, budget, Stage(progress, 0.0, 0.3))
    check_statistics(statistics, len(bands), info)
    whitening = rx.whitening_matrix(statistics.covariance)
    progress.info(f"Background from {statistics.count} valid pixels, {len(bands)} bands "
                  f"(covariance rank {whitening.shape[1]}).")

    name = "RX global anomaly score" if options.detector == "global" else (
        f"RX local anomaly score (windows {options.inner_window}/{options.outer_window})")
    with RasterWriter(output_path, info, [name]) as writer:
        scoring = Stage(progress, 0.3, 1.0)
        if options.detector == "global":
            write_global_scores(reader, statistics, whitening, writer, budget, scoring)
        else:
            write_local_scores(reader, statistics, whitening, options, writer, budget, scoring)
    return DetectionSummary(output_path, statistics.count, len(bands), time.perf_counter() - started)


def write_global_scores(reader, statistics, whitening, writer, budget, progress) -> None:
    """Second pass of global RX: score every block of ``reader`` against the background and write it."""
    info = reader.info
    windows = block_windows(info, reader.bytes_per_pixel, budget)
    for (first_row, _, first_column, _), cube_bhw, valid_hw in iter_blocks(reader, windows, progress):
        scores_hw = np.empty(valid_hw.shape)
        for rows in row_chunks(*valid_hw.shape, len(reader.bands)):
            pixels_nc = cube_bhw[:, rows].reshape(cube_bhw.shape[0], -1).T
            scores_hw[rows] = rx.rx_scores(pixels_nc, statistics.mean, whitening).reshape(scores_hw[rows].shape)
        writer.write(first_row, scores_hw[None], valid_hw, first_column)


def write_local_scores(reader, statistics, whitening, options, writer, budget, progress) -> None:
    """Second pass of local RX, in the globally whitened space: exact for full-rank data (RX is affine-invariant) and well
    conditioned for constant or collinear bands, which the whitening drops."""
    info = reader.info
    rank = whitening.shape[1]
    outer_h = min(options.outer_window, info.height)
    if outer_h * min(options.outer_window, info.width) - options.inner_window ** 2 <= rank:
        raise InputError(
            f"The local background window holds too few pixels for {rank} spectral dimensions: enlarge the outer "
            f"window (now {options.outer_window}) or select fewer bands.")
    bytes_per_row = info.width * (len(reader.bands) + rank) * 8 * 2
    output_rows = max(1, budget // 2 // bytes_per_row - outer_h)
    windows = [(start, min(output_rows, info.height - start)) for start in range(0, info.height, output_rows)]
    window_pixels = max(outer_h, budget // 4 // (8 * 3 * max(rank, 1)))
    for index, (first_row, row_count) in enumerate(windows):
        progress.check_cancelled()
        slab_first = int(rx.window_start(np.array(first_row), outer_h, info.height))
        slab_stop = int(rx.window_start(np.array(first_row + row_count - 1), outer_h, info.height)) + outer_h
        cube_bhw, valid_hw = reader.read(slab_first, slab_stop - slab_first)
        pixels_nc = cube_bhw.reshape(cube_bhw.shape[0], -1).T
        whitened_bhw = ((pixels_nc - statistics.mean) @ whitening).T.reshape(rank, *valid_hw.shape)
        scores = rx.local_rx_rows(whitened_bhw, valid_hw, slab_first, info.height,
                                  (first_row, first_row + row_count), options.inner_window,
                                  options.outer_window, window_pixels)
        rows = slice(first_row - slab_first, first_row - slab_first + row_count)
        writer.write(first_row, scores[None], valid_hw[rows])
        progress.set_fraction((index + 1) / len(windows))
