"""The FERS jobs: background-feature enhancement with the two ONNX branches, then RX, in bounded memory.

Passes over the raster:
1. scene statistics of the model bands over valid pixels (min/max for the normalisation, mean for filling holes,
   and the window around the valid pixels: the networks see only that window, so fill around the data changes
   nothing they see);
2. for each output block: the normalised model bands ``x``, ``spe_f`` (spectral branch, on the block plus its
   halo of real neighbours) and ``spa_f`` (spatial branch, on the fixed tiles of an overlapping grid laid on that
   window that touch the block, blended with a smooth window; each tile reads its own input and is cached for the
   neighbouring blocks); the cubes a detector needs are written to uncompressed temporary GeoTIFFs while their
   RX background statistics accumulate;
3. RX scoring of the temporary cubes (global or local), then combination (product rule) and 0-1 scaling.

Blocks are 2-D (rows x columns), so peak memory is set by ``memory_budget_mb`` and the tile size, not by the
raster's size (GDAL's own block cache comes on top, bounded by GDAL_CACHEMAX). The scoring passes reuse the RX
job's row windows. Temporary files live in a hidden folder next to the output and are deleted at the end, also on
error or cancel; the output itself is written through RasterWriter, so a failed run leaves nothing behind.
"""
import math
import os
import shutil
import tempfile
import time
from collections import OrderedDict
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from osgeo import gdal

from . import rx
from .detection import (DetectionSummary, check_statistics, check_windows, local_window_components,
                        write_global_scores, write_local_scores)
from .errors import InputError
from .onnx_runtime import FersModelSet, load_model_set
from .progress import Progress, Stage
from .raster import (BlockReader, FlushingWrites, RasterInfo, RasterWriter, block_windows, check_output_path,
                     describe_raster, gdal_errors_as_exceptions, iter_blocks)
from .spectral import (MinMaxNormaliser, SceneRange, band_matrix, format_band_numbers, known_wavelengths,
                       to_model_bands)
from .validity import ValidityOptions, model_band_reader
from .memory import release_free_memory

# The published detectors and their comparisons: which cube RX runs on, and how.
DETECTORS = ("fers", "fers-spectral", "fers-spatial", "rx", "fers-local")
# An estimate of what the ONNX branches hold in flight per pixel (the released spectral branch carries about a
# thousand float32 channels per pixel); it sizes blocks, it is not a hard limit.
MODEL_WORKING_BYTES_PER_PIXEL = 8192
# Strip heights are multiples of this when strips are taller: the tile heights of the files written here.
ALIGNED_ROWS = 256
# Smallest block side: smaller blocks would spend most of their time on halo and overlapping tiles.
MIN_BLOCK_SIDE = 16
SUM, SPATIAL, SPECTRAL, PLAIN = "x+spa_f+spe_f", "x+spa_f", "x+spe_f", "x"
# How logs name those cubes for users.
CUBE_WORDS = {SUM: "the enhanced image (bands + spatial + spectral features)",
              SPATIAL: "bands + spatial features", SPECTRAL: "bands + spectral features", PLAIN: "the model bands"}


@dataclass(frozen=True)
class FersOptions:
    """Settings of a FERS detection run.

    ``fusion`` None uses the model's own rule ("sum": RX of x + spa_f + spe_f; "product": the product of the
    min-max scaled RX maps of x + spa_f and x + spe_f); it applies to the "fers" detector. ``undeclared_fill``:
    pixels with one value in every band are fill (see ``validity``).
    """

    detector: str = "fers"
    fusion: Optional[str] = None
    inner_window: int = 3
    outer_window: int = 15
    scale_scores: bool = False
    memory_budget_mb: float = 512
    use_gpu: bool = False
    undeclared_fill: bool = True
    local_background: rx.LocalBackgroundRule = rx.LocalBackgroundRule()


def _check_options(options: FersOptions) -> None:
    if options.detector not in DETECTORS:
        raise InputError(f"Unknown detector {options.detector!r}; choose one of {', '.join(DETECTORS)}.")
    if options.fusion not in (None, "sum", "product"):
        raise InputError(f"Unknown fusion rule {options.fusion!r}; choose 'sum' or 'product'.")
    if options.detector == "fers-local":
        check_windows(options.inner_window, options.outer_window)
    if not options.memory_budget_mb > 0:
        raise InputError("The memory budget must be a positive number of megabytes.")


# ---------------------------------------------------------------------------------------------------------------
# Scene: band selection and normalisation (pass 1)


@dataclass
class _Scene:
    """A raster seen through a model: which source bands it reads and how they become normalised model bands."""

    info: RasterInfo
    reader: BlockReader
    matrix: np.ndarray                                   # (B, source bands read)
    band_names: Tuple[str, ...]                          # of the model bands
    wavelengths_nm: Tuple[Optional[float], ...]
    normaliser: Optional[MinMaxNormaliser] = None        # set by the statistics pass
    fill_b: Optional[np.ndarray] = None                  # normalised scene-mean spectrum, for invalid pixels
    valid_pixels: int = 0
    extent: Optional[Tuple[int, int, int, int]] = None   # (row0, row1, col0, col1) the networks see; see normalise

    def model_input(self, first_row: int, rows: int, first_column: int, columns: int
                    ) -> Tuple[np.ndarray, np.ndarray]:
        """(x_bhw float32, valid_hw) for a window: normalised model bands, invalid pixels holding the fill."""
        cube_bhw, valid_hw = self.reader.read(first_row, rows, first_column, columns)
        x_bhw = self.normaliser.apply(to_model_bands(cube_bhw, self.matrix))
        x_bhw[:, ~valid_hw] = self.fill_b[:, None]
        return x_bhw.astype(np.float32), valid_hw


def _model_band_labels(info: RasterInfo, matrix: np.ndarray, used: np.ndarray, band_mode: str
                       ) -> Tuple[Tuple[str, ...], Tuple[Optional[float], ...]]:
    """Names and wavelengths of the model bands: a source band's own where a model band selects one (except in
    'resample' mode), else "Model band N" with its interpolated wavelength."""
    source_wavelengths = [info.wavelengths_nm[band] for band in used]
    wavelengths: Tuple[Optional[float], ...] = (None,) * matrix.shape[0]
    if all(w is not None for w in source_wavelengths):
        wavelengths = tuple(float(w) for w in matrix @ np.asarray(source_wavelengths, dtype=np.float64))
    names = []
    for index, (row, wavelength) in enumerate(zip(matrix, wavelengths)):
        if band_mode != "resample" and np.count_nonzero(row) == 1:
            names.append(info.band_names[used[int(np.argmax(row))]])
        else:
            names.append(f"Model band {index + 1}" + (f" ({wavelength:.1f} nm)" if wavelength is not None else ""))
    return tuple(names), wavelengths


def _open_scene(input_path: str, model: FersModelSet, mask_path: Optional[str], undeclared_fill: bool,
                budget: int, progress: Progress) -> _Scene:
    """Band compatibility (naming alternatives) and the raster's size, then the bad-band scan: a model band that
    reads a bad band is filled from its good neighbours (``fill_bad_model_bands``), and the log says so."""
    info = describe_raster(input_path)
    metadata = model.metadata

    def matrix_for(usable: Optional[np.ndarray] = None) -> np.ndarray:
        return band_matrix(info.band_count, metadata.bands, metadata.band_mode, info.wavelengths_nm,
                           metadata.wavelengths_nm, usable)

    matrix_for()  # a raster the model cannot read is refused before the scan
    # Exported spectral branches accept tiles of at least 2 halo + 1 pixels a side (their reflect padding).
    smallest = max(2 * metadata.halo + 1, 2)
    if info.height < smallest or info.width < smallest:
        raise InputError(f"{os.path.basename(input_path)} is {info.width} x {info.height} pixels; this model needs "
                         f"at least {smallest} x {smallest}.")
    reader, matrix, used = model_band_reader(info, matrix_for, mask_path, ValidityOptions(undeclared_fill), budget,
                                             progress)
    names, wavelengths = _model_band_labels(info, matrix, used, metadata.band_mode)
    return _Scene(info, reader, matrix, names, wavelengths)


@dataclass
class ModelBandStatistics:
    """Pass-1 statistics of the model bands over valid pixels: their range (exact, and a sample for the robust
    one), sums and count. Blocks merge in any order (a tree of merges gives the statistics of one pass)."""

    value_range: SceneRange
    sums_b: np.ndarray
    count: int
    valid_extent: Optional[Tuple[int, int, int, int]] = None  # (row0, row1, col0, col1) around every valid pixel

    @classmethod
    def empty(cls, scene: _Scene) -> "ModelBandStatistics":
        bands = scene.matrix.shape[0]
        return cls(SceneRange(), np.zeros(bands), 0)

    @classmethod
    def of_block(cls, scene: _Scene, window: Tuple[int, int, int, int], cube_bhw: np.ndarray, valid_hw: np.ndarray
                 ) -> "ModelBandStatistics":
        """The statistics of one window (first_row, rows, first_column, columns) read by the scene's reader."""
        statistics = cls.empty(scene)
        if valid_hw.any():
            values_bn = to_model_bands(cube_bhw, scene.matrix)[:, valid_hw]
            statistics.value_range.add(values_bn)
            statistics.sums_b = values_bn.sum(axis=1, dtype=np.float64)
            statistics.count = values_bn.shape[1]
            rows, columns = np.flatnonzero(valid_hw.any(axis=1)), np.flatnonzero(valid_hw.any(axis=0))
            statistics.valid_extent = (window[0] + int(rows[0]), window[0] + int(rows[-1]) + 1,
                                       window[2] + int(columns[0]), window[2] + int(columns[-1]) + 1)
        return statistics

    def merge(self, other: "ModelBandStatistics") -> "ModelBandStatistics":
        """Merge another block's statistics into these; returns self."""
        self.value_range.merge(other.value_range)
        self.sums_b = self.sums_b + other.sums_b
        self.count += other.count
        if self.valid_extent is None or other.valid_extent is None:
            self.valid_extent = self.valid_extent or other.valid_extent
        else:
            mine, theirs = self.valid_extent, other.valid_extent
            self.valid_extent = (min(mine[0], theirs[0]), max(mine[1], theirs[1]),
                                 min(mine[2], theirs[2]), max(mine[3], theirs[3]))
        return self

    def normalise(self, scene: _Scene, model: FersModelSet, progress: Optional[Progress] = None) -> None:
        """Set the scene's normalisation (the model's method) and fill spectrum from the statistics of all its
        blocks, and say in the log what range it took."""
        if self.count == 0:
            raise InputError(f"{scene.info.path} has no valid pixels: every pixel is nodata, NaN or masked out.")
        scene.normaliser = normaliser = self.value_range.normaliser(model.metadata.normalisation,
                                                                    model.metadata.normalisation_scale)
        scene.fill_b = normaliser.apply(self.sums_b / self.count)
        scene.valid_pixels = self.count
        scene.extent = network_extent(self.valid_extent, scene.info, model)
        progress = progress or Progress()
        progress.info(f"Model bands normalised over {self.count} valid pixels (range {normaliser.minimum:g} to "
                      f"{normaliser.maximum:g}).")
        scene_range = self.value_range
        if scene_range.minimum < normaliser.minimum or scene_range.maximum > normaliser.maximum:
            progress.info(f"Outlying values ({scene_range.minimum:g} to {scene_range.maximum:g} in the scene, e.g. "
                          "saturated or dead pixels) were clipped to that range so that they do not squeeze the "
                          "rest.")
        row0, row1, column0, column1 = scene.extent
        if (row1 - row0, column1 - column0) != (scene.info.height, scene.info.width):
            progress.info(f"The valid pixels lie within rows {row0 + 1}-{row1} and columns {column0 + 1}-{column1}: "
                          "the networks see that window, as if the raster were cut to it, so the fill around it "
                          "changes nothing.")


def network_extent(valid_extent: Tuple[int, int, int, int], info: RasterInfo, model: FersModelSet
                   ) -> Tuple[int, int, int, int]:
    """The window the networks run on: around every valid pixel (fill margins are cut off, so a scene padded
    with fill scores exactly like the scene), grown inside the raster to the smallest size the model accepts."""
    smallest = max(2 * model.halo + 1, 2)
    row0, row1 = _grown(valid_extent[0], valid_extent[1], 0, info.height, smallest)
    column0, column1 = _grown(valid_extent[2], valid_extent[3], 0, info.width, smallest)
    return row0, row1, column0, column1


def scan_windows(scene: _Scene, budget: int) -> List[Tuple[int, int, int, int]]:
    """The windows of pass 1 within the memory budget."""
    return block_windows(scene.info, scene.reader.bytes_per_pixel + 2 * scene.matrix.shape[0] * 8, budget)


def _report_band_order(scene: _Scene, model: FersModelSet, progress: Progress) -> None:
    """Say which of the raster's bands (and wavelengths) the model reads, and when they are not simply the first
    ones: by wavelength, or from the far end."""
    bands_read = scene.reader.bands
    span = f"bands {format_band_numbers(bands_read)}"
    wavelengths = [w for w in scene.wavelengths_nm if w is not None]
    if len(wavelengths) == len(scene.wavelengths_nm):
        span = f"{min(wavelengths):.0f}-{max(wavelengths):.0f} nm ({span})"
    progress.info(f"FERS reads {len(bands_read)} of the raster's {scene.info.band_count} bands, {span}, with "
                  f"{model.bands} model bands ({model.metadata.band_mode} mode).")
    source_wavelengths = known_wavelengths(scene.info.wavelengths_nm)
    if model.metadata.wavelengths_nm and source_wavelengths is not None:
        progress.info(f"The model's {model.bands} bands ({min(model.metadata.wavelengths_nm):.0f}-"
                      f"{max(model.metadata.wavelengths_nm):.0f} nm, as trained) are taken from the raster by "
                      "wavelength.")
    elif source_wavelengths is not None and source_wavelengths[0] > source_wavelengths[-1]:
        progress.info("The raster lists its bands from long to short wavelengths; the model reads them from short "
                      "to long.")


def _scan_scene(scene: _Scene, model: FersModelSet, budget: int, progress: Progress) -> None:
    """Pass 1: range, sums and count of the model bands over every valid pixel; sets the scene's normalisation."""
    _report_band_order(scene, model, progress)
    statistics = ModelBandStatistics.empty(scene)
    for window, cube_bhw, valid_hw in iter_blocks(scene.reader, scan_windows(scene, budget), progress):
        statistics.merge(ModelBandStatistics.of_block(scene, window, cube_bhw, valid_hw))
    statistics.normalise(scene, model, progress)


# ---------------------------------------------------------------------------------------------------------------
# Feature blocks (pass 2)


def tile_starts(extent: int, tile: int) -> List[int]:
    """First index of each spatial tile along one axis: stride 3/4 tile, the last tile flush with the far edge.

    A quarter-tile overlap is enough for the blending window to hide the seams, and each pixel is seen by 1.8
    tiles instead of the 4 of half-tile overlap (the AUC on the evaluation scenes does not depend on the overlap:
    docs/BENCHMARKS.md). An axis shorter than the tile has one tile at 0, reflect-padded up to the tile size."""
    if extent <= tile:
        return [0]
    stride = max(1, 3 * tile // 4)
    return list(range(0, extent - tile, stride)) + [extent - tile]


def blend_window(tile: int) -> np.ndarray:
    """1-D blending weights of a tile: a raised sine, largest in the middle, small but positive at the edges
    (so image borders, which only one tile covers, keep their values after normalisation by the weight sum)."""
    return np.sin(np.pi * (np.arange(tile) + 0.5) / tile) ** 2


def reflect_padding(extent: int, tile: int) -> Tuple[int, int]:
    """(before, after) padding that brings an axis shorter than the tile up to the tile size, centred."""
    missing = max(tile - extent, 0)
    return missing // 2, missing - missing // 2


@dataclass(frozen=True)
class BlockPlan:
    """Output blocks of block_h x block_w pixels in row-major order; iterated lazily, so a huge raster costs no
    memory for its list of blocks. Each yields (row0, row1, col0, col1)."""

    height: int
    width: int
    block_h: int
    block_w: int

    def __len__(self) -> int:
        return -(-self.height // self.block_h) * -(-self.width // self.block_w)

    def __iter__(self) -> Iterator[Tuple[int, int, int, int]]:
        for r0 in range(0, self.height, self.block_h):
            for c0 in range(0, self.width, self.block_w):
                yield r0, min(r0 + self.block_h, self.height), c0, min(c0 + self.block_w, self.width)


def plan_blocks(height: int, width: int, bytes_per_pixel: int, budget: int, context: int) -> BlockPlan:
    """Blocks whose region (the block plus ``context`` pixels each side, clipped to the image) fits the budget.

    Whole-width strips when they fit (no column context needed), else whole-height columns (short, wide
    rasters), else squares; never smaller than MIN_BLOCK_SIDE, so the peak is bounded by the budget or by
    (MIN_BLOCK_SIDE + 2 context)^2 pixels, whichever is larger, and never by the raster's size.
    """
    pixels = max(1, budget // bytes_per_pixel)
    rows = pixels // width - 2 * context
    if rows > ALIGNED_ROWS:
        rows -= rows % ALIGNED_ROWS  # strips then end on whole file tiles, which can be flushed complete
    if rows >= min(height, MIN_BLOCK_SIDE):
        return BlockPlan(height, width, max(1, min(rows, height)), width)
    columns = pixels // height - 2 * context
    if columns >= min(width, MIN_BLOCK_SIDE):
        return BlockPlan(height, width, height, max(1, min(columns, width)))
    side = max(MIN_BLOCK_SIDE, math.isqrt(pixels) - 2 * context)
    return BlockPlan(height, width, min(side, height), min(side, width))


def _grown(start: int, stop: int, low: int, high: int, smallest: int) -> Tuple[int, int]:
    """[start, stop) clipped to [low, high), then grown inside it to at least ``smallest`` (more real
    neighbours never change a local operator's result)."""
    start, stop = max(low, start), min(high, stop)
    missing = min(smallest, high - low) - (stop - start)
    if missing > 0:
        start = max(low, start - missing)
        stop = min(high, start + max(smallest, stop - start))
    return start, stop


class _FeatureBlocks:
    """Computes x, spe_f and spa_f for output blocks of a scene."""

    def __init__(self, scene: _Scene, model: FersModelSet, need_spectral: bool, need_spatial: bool, budget: int):
        self.scene = scene
        self.model = model
        self.need_spectral = need_spectral
        self.need_spatial = need_spatial
        bands = model.bands
        # Spectral tiles take up to 2 halo of context so that a thin block at the image edge can still be grown
        # to the smallest tile the exported branch accepts (see _spectral). Spatial tiles read their own input.
        self.context = 2 * model.halo if need_spectral else 0
        bytes_per_pixel = scene.reader.bytes_per_pixel + bands * 4 * 8 + (
            MODEL_WORKING_BYTES_PER_PIXEL if need_spectral or need_spatial else 0)
        self.blocks = plan_blocks(scene.info.height, scene.info.width, bytes_per_pixel, budget, self.context)
        tile = model.tile_size
        self.tiles_per_run = max(1, budget // 4 // (tile * tile * (bands * 8 + MODEL_WORKING_BYTES_PER_PIXEL)))
        self._tile_cache: "OrderedDict[Tuple[int, int], np.ndarray]" = OrderedDict()
        self._cache_capacity = budget // 4 // (tile * tile * bands * 4) if need_spatial else 0

    def compute(self, block: Tuple[int, int, int, int]) -> Tuple[np.ndarray, Optional[np.ndarray],
                                                                 Optional[np.ndarray], np.ndarray]:
        """(x_bhw, spe_f_bhw or None, spa_f_bhw or None, valid_hw) of one output block. The networks run on the
        scene's extent only: outside it every pixel is fill (zeros, invalid)."""
        r0, r1, c0, c1 = block
        top, bottom, left, right = self.scene.extent
        inner = (max(r0, top), min(r1, bottom), max(c0, left), min(c1, right))
        if inner == block:
            return self._compute_inside(block)
        parts = [np.zeros((self.model.bands, r1 - r0, c1 - c0), dtype=np.float32),
                 *(np.zeros((self.model.bands, r1 - r0, c1 - c0)) if needed else None
                   for needed in (self.need_spectral, self.need_spatial)),
                 np.zeros((r1 - r0, c1 - c0), dtype=bool)]
        if inner[0] < inner[1] and inner[2] < inner[3]:
            where = (slice(inner[0] - r0, inner[1] - r0), slice(inner[2] - c0, inner[3] - c0))
            for whole, part in zip(parts, self._compute_inside(inner)):
                if whole is not None:
                    whole[(Ellipsis,) + where] = part
        return tuple(parts)

    def _compute_inside(self, block: Tuple[int, int, int, int]) -> Tuple[np.ndarray, Optional[np.ndarray],
                                                                         Optional[np.ndarray], np.ndarray]:
        """compute() of a block inside the scene's extent."""
        top, bottom, left, right = self.scene.extent
        r0, r1, c0, c1 = block
        region = (max(top, r0 - self.context), min(bottom, r1 + self.context),
                  max(left, c0 - self.context), min(right, c1 + self.context))
        x_region, valid_region = self.scene.model_input(region[0], region[1] - region[0],
                                                        region[2], region[3] - region[2])
        inside = (slice(r0 - region[0], r1 - region[0]), slice(c0 - region[2], c1 - region[2]))
        spectral = self._spectral(x_region, region, block) if self.need_spectral else None
        spatial = self._spatial(block) if self.need_spatial else None
        return x_region[(slice(None),) + inside], spectral, spatial, valid_region[inside]

    def _spectral(self, x_region, region, block) -> np.ndarray:
        """spe_f of the block: the branch runs on the block plus up to ``halo`` real neighbours on each side
        (none at the border of the extent, where the model's own reflect padding matches the untiled run)."""
        halo = self.model.halo
        first_row, last_row, first_column, last_column = self.scene.extent
        r0, r1, c0, c1 = block
        top, bottom = _grown(r0 - halo, r1 + halo, first_row, last_row, 2 * halo + 1)
        left, right = _grown(c0 - halo, c1 + halo, first_column, last_column, 2 * halo + 1)
        features = self.model.spectral_features(
            x_region[:, top - region[0]:bottom - region[0], left - region[2]:right - region[2]])
        return features[:, r0 - top:r1 - top, c0 - left:c1 - left]

    def _spatial(self, block) -> np.ndarray:
        """spa_f of the block: weighted mean of the overlapping fixed-size tiles of the grid laid on the scene's
        extent that cover it.

        A tile overlaps several blocks; its features are kept in a small cache (a quarter of the budget) so that
        neighbouring blocks reuse them instead of running the branch again."""
        tile = self.model.tile_size
        first_row, last_row, first_column, last_column = self.scene.extent
        height, width = last_row - first_row, last_column - first_column
        r0, r1, c0, c1 = block
        tile_h, tile_w = min(tile, height), min(tile, width)
        pad_rows, pad_cols = reflect_padding(height, tile), reflect_padding(width, tile)
        window = blend_window(tile)
        row_weights = window[pad_rows[0]:pad_rows[0] + tile_h]
        col_weights = window[pad_cols[0]:pad_cols[0] + tile_w]
        accumulated = np.zeros((self.model.bands, r1 - r0, c1 - c0))
        weight_sum = np.zeros((r1 - r0, c1 - c0))

        def add(row, col, tile_features):
            top, bottom = max(row, r0), min(row + tile_h, r1)
            left, right = max(col, c0), min(col + tile_w, c1)
            weights = np.outer(row_weights[top - row:bottom - row], col_weights[left - col:right - col])
            accumulated[:, top - r0:bottom - r0, left - c0:right - c0] += \
                tile_features[:, top - row:bottom - row, left - col:right - col] * weights
            weight_sum[top - r0:bottom - r0, left - c0:right - c0] += weights

        placements = [(row, col) for row in (first_row + start for start in tile_starts(height, tile))
                      if row < r1 and row + tile_h > r0
                      for col in (first_column + start for start in tile_starts(width, tile))
                      if col < c1 and col + tile_w > c0]
        missing = [place for place in placements if place not in self._tile_cache]
        for place in placements:
            if place in self._tile_cache:
                self._tile_cache.move_to_end(place)
                add(*place, self._tile_cache[place])
        if missing:
            # One read of the region under every missing tile: tiles overlap, and many small reads would decode
            # the same file blocks again and again.
            top, left = min(row for row, _ in missing), min(col for _, col in missing)
            bottom, right = max(row for row, _ in missing) + tile_h, max(col for _, col in missing) + tile_w
            region, _ = self.scene.model_input(top, bottom - top, left, right - left)
        for first in range(0, len(missing), self.tiles_per_run):
            batch = missing[first:first + self.tiles_per_run]
            tiles = np.stack([region[:, row - top:row - top + tile_h, col - left:col - left + tile_w]
                              for row, col in batch])
            if pad_rows != (0, 0) or pad_cols != (0, 0):
                tiles = np.pad(tiles, ((0, 0), (0, 0), pad_rows, pad_cols), mode="reflect")
            features = self.model.spatial_features(tiles)
            for place, tile_features in zip(batch, features):
                tile_features = tile_features[:, pad_rows[0]:pad_rows[0] + tile_h, pad_cols[0]:pad_cols[0] + tile_w]
                add(*place, tile_features)
                self._remember(place, tile_features)
        return accumulated / weight_sum

    def _remember(self, place: Tuple[int, int], tile_features: np.ndarray) -> None:
        """Keep a tile's features for the next blocks, dropping the least recently used beyond the capacity."""
        if self._cache_capacity == 0:
            return
        self._tile_cache[place] = tile_features.copy()  # a copy: a view would keep the whole batch alive
        while len(self._tile_cache) > self._cache_capacity:
            self._tile_cache.popitem(last=False)


# ---------------------------------------------------------------------------------------------------------------
# Temporary rasters


class _TempRaster:
    """An uncompressed Float32 GeoTIFF in the job's temporary folder; NaN marks invalid pixels."""

    def __init__(self, path: str, like: RasterInfo, bands: int):
        self.path = path
        self.bands = bands
        with gdal_errors_as_exceptions():
            try:
                # Tiled and pixel-interleaved: 2-D block writes of all bands touch each file block once.
                self._dataset = gdal.GetDriverByName("GTiff").Create(
                    path, like.width, like.height, bands, gdal.GDT_Float32,
                    ["BIGTIFF=IF_SAFER", "TILED=YES", "BLOCKXSIZE=128", "BLOCKYSIZE=128", "INTERLEAVE=PIXEL"])
            except RuntimeError as error:
                raise InputError(f"Cannot write temporary data next to the output ({path}): {error}") from error
        self.minimum, self.maximum = np.inf, -np.inf
        self._flushing = FlushingWrites()

    def write(self, first_row: int, values_bhw: np.ndarray, valid_hw: np.ndarray, first_column: int = 0) -> None:
        """Write a block (same call as RasterWriter.write) and track the range of its valid values."""
        block = np.where(valid_hw[None], values_bhw, np.nan).astype(np.float32)
        if valid_hw.any():
            self.minimum = min(self.minimum, float(np.nanmin(block)))
            self.maximum = max(self.maximum, float(np.nanmax(block)))
        with gdal_errors_as_exceptions():
            self._dataset.WriteArray(block, first_column, first_row)
        self._flushing.written(self._dataset, block.nbytes)

    def finish(self) -> BlockReader:
        """Close for writing and return a reader of all bands (NaN pixels read as invalid)."""
        self._dataset.FlushCache()
        self._dataset = None
        info = describe_raster(self.path)
        return BlockReader(info, tuple(range(1, self.bands + 1)))

    def close(self) -> None:
        """Drop the dataset without finishing it (the workspace is being deleted)."""
        self._dataset = None


class _Workspace:
    """The job's hidden temporary folder next to the output; removes everything in it on close."""

    def __init__(self, output_path: str):
        folder = os.path.dirname(os.path.abspath(output_path))
        self.folder = tempfile.mkdtemp(prefix=".fers-", dir=folder)
        self._open: list = []

    def raster(self, name: str, like: RasterInfo, bands: int) -> _TempRaster:
        """A new temporary raster on the grid of ``like``."""
        temp = _TempRaster(os.path.join(self.folder, name + ".tif"), like, bands)
        self._open.append(temp)
        return temp

    def track(self, reader: BlockReader) -> BlockReader:
        """Close this reader with the workspace."""
        self._open.append(reader)
        return reader

    def close(self) -> None:
        """Close every file the job opened here and delete the folder."""
        for item in self._open:
            item.close()
        self._open = []
        shutil.rmtree(self.folder, ignore_errors=True)


def _combine(spatial_bhw, spectral_bhw, x_bhw, name: str) -> np.ndarray:
    """One of the cubes RX can run on, float64."""
    x = x_bhw.astype(np.float64)
    if name == PLAIN:
        return x
    if name == SPATIAL:
        return x + spatial_bhw
    if name == SPECTRAL:
        return x + spectral_bhw
    return x + spatial_bhw + spectral_bhw


def _run_feature_pass(features: _FeatureBlocks, sinks: Dict[str, object],
                      statistics: Dict[str, rx.BackgroundStatistics], progress: Progress) -> None:
    """Pass 2: compute each block's features and hand the named cubes to their sinks (and statistics)."""
    for index, block in enumerate(features.blocks):
        progress.check_cancelled()
        cubes, valid_hw = feature_block(features, block, sinks, statistics)
        for name, sink in sinks.items():
            sink.write(block[0], cubes[name], valid_hw, block[2])
        release_free_memory()
        progress.set_fraction((index + 1) / len(features.blocks))


def feature_block(features: _FeatureBlocks, block: Tuple[int, int, int, int], names: Sequence[str],
                  statistics: Dict[str, rx.BackgroundStatistics]) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
    """The named cubes of one output block and its valid pixels; cubes named in ``statistics`` are added to them."""
    x_bhw, spectral_bhw, spatial_bhw, valid_hw = features.compute(block)
    cubes = {}
    for name in names:
        if name == "spe_f":
            cubes[name] = spectral_bhw
        elif name == "spa_f":
            cubes[name] = spatial_bhw
        else:
            cubes[name] = _combine(spatial_bhw, spectral_bhw, x_bhw, name)
        if name in statistics and valid_hw.any():
            # Statistics of the float32 values the scoring pass will read back, so both agree exactly.
            statistics[name].add(cubes[name][:, valid_hw].astype(np.float32).astype(np.float64).T)
    return cubes, valid_hw


# ---------------------------------------------------------------------------------------------------------------
# Public jobs


def _prepare(input_path: str, output_paths: Sequence[str], model_path: str, mask_path: Optional[str],
             use_gpu: bool, undeclared_fill: bool, budget: int, progress: Progress):
    """Every check, before any file is written: the model, the outputs, then the raster and its bad bands."""
    model = load_model_set(model_path, use_gpu)
    outputs = [path for path in output_paths if path]
    if len(set(os.path.realpath(path) for path in outputs)) != len(outputs):
        raise InputError("Two outputs were given the same file name: give each output its own file.")
    for path in outputs:
        check_output_path(path, [input_path, mask_path, model_path, model.spatial_path])
    scene = _open_scene(input_path, model, mask_path, undeclared_fill, budget, progress)
    return model, scene


def _detector_cubes(detector: str, fusion: str) -> List[str]:
    """The cubes RX runs on for a detector (two for the product rule)."""
    if detector in ("fers", "fers-local"):
        return [SPATIAL, SPECTRAL] if detector == "fers" and fusion == "product" else [SUM]
    return {"fers-spectral": [SPECTRAL], "fers-spatial": [SPATIAL], "rx": [PLAIN]}[detector]


def needed_branches(cube_names: Sequence[str]) -> Tuple[bool, bool]:
    """(spectral branch needed, spatial branch needed) for the cubes RX runs on."""
    return any(name in (SUM, SPECTRAL) for name in cube_names), any(name in (SUM, SPATIAL) for name in cube_names)


def _score_label(detector: str, fusion: str, options: FersOptions) -> str:
    """The output band's name: what the scores are."""
    labels = {"fers": "FERS-RX anomaly score" + (" (product rule)" if fusion == "product" else ""),
              "fers-spectral": "FERS spectral branch anomaly score",
              "fers-spatial": "FERS spatial branch anomaly score",
              "rx": "plain RX anomaly score (model bands)",
              "fers-local": f"FERS local RX anomaly score (windows {options.inner_window}/{options.outer_window})"}
    return labels[detector] + (", scaled 0-1" if options.scale_scores else "")


def _scaled(scores: np.ndarray, minimum: float, maximum: float) -> np.ndarray:
    """Min-max scaling to [0, 1]; a constant map becomes zeros."""
    span = maximum - minimum
    return (scores - minimum) / span if span > 0 else np.zeros_like(scores)


def detect_fers(input_path: str, output_path: str, model_path: str, options: FersOptions = FersOptions(),
                mask_path: Optional[str] = None, progress: Optional[Progress] = None) -> DetectionSummary:
    """Score every pixel with a FERS detector and write a single-band Float32 GeoTIFF on the input's grid.

    Invalid pixels (nodata, NaN/Inf, masked) take no part in the statistics and are written as nodata. All checks
    on the model, the raster and the outputs happen before any file is created; an error or a cancel leaves no
    output and no temporary files behind.
    """
    started = time.perf_counter()
    progress = progress or Progress()
    _check_options(options)
    budget = int(options.memory_budget_mb * 2**20)
    model, scene = _prepare(input_path, [output_path], model_path, mask_path, options.use_gpu,
                            options.undeclared_fill, budget, Stage(progress, 0.0, 0.05))
    fusion = options.fusion or model.metadata.fusion
    cube_names = _detector_cubes(options.detector, fusion)
    info = scene.info
    workspace = _Workspace(output_path)
    try:
        _scan_scene(scene, model, budget, Stage(progress, 0.05, 0.1))
        features = _FeatureBlocks(scene, model, *needed_branches(cube_names), budget)
        cubes = {name: workspace.raster(f"cube{index}", info, model.bands) for index, name in enumerate(cube_names)}
        statistics = {name: rx.BackgroundStatistics(model.bands) for name in cube_names}
        _run_feature_pass(features, cubes, statistics, Stage(progress, 0.1, 0.7))

        whitenings = {}
        for name in cube_names:
            check_statistics(statistics[name], model.bands, info)
            whitenings[name] = whitening = rx.whitening_matrix(statistics[name].covariance)
            progress.info(f"RX background of {CUBE_WORDS[name]}: {statistics[name].count} pixels, covariance rank "
                          f"{whitening.shape[1]} of {model.bands}.")
            if options.detector == "fers-local":
                local_window_components(info, options, whitening.shape[1])

        label = _score_label(options.detector, fusion, options)
        direct = len(cube_names) == 1 and not options.scale_scores
        score_files = []
        scoring_end = 1.0 if direct else 0.95
        with RasterWriter(output_path, info, [label]) as writer:
            for index, name in enumerate(cube_names):
                cube_reader = workspace.track(cubes[name].finish())
                whitening = whitenings[name]
                sink = writer if direct else workspace.raster(f"scores{index}", info, 1)
                span = (scoring_end - 0.7) / len(cube_names)
                stage = Stage(progress, 0.7 + index * span, 0.7 + (index + 1) * span)
                if options.detector == "fers-local":
                    write_local_scores(cube_reader, statistics[name], whitening, options, sink, budget, stage)
                else:
                    write_global_scores(cube_reader, statistics[name], whitening, sink, budget, stage)
                cube_reader.close()  # its window buffer is not needed by the next cube
                if not direct:
                    score_files.append(sink)
            if not direct:
                write_final_scores([workspace.track(item.finish()) for item in score_files],
                                   [(item.minimum, item.maximum) for item in score_files], writer,
                                   options.scale_scores, budget, Stage(progress, scoring_end, 1.0))
    finally:
        scene.reader.close()
        workspace.close()
    return DetectionSummary(output_path, scene.valid_pixels, model.bands, time.perf_counter() - started)


def write_final_scores(readers: List[BlockReader], ranges: List[Tuple[float, float]], writer: RasterWriter,
                       scale: bool, budget: int, progress: Progress) -> None:
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
            product_hw = _scaled(scores_bhw[0], *ranges[0])
            for other, value_range in zip(readers[1:], ranges[1:]):
                other_bhw, other_valid = other.read(*window)
                product_hw = product_hw * _scaled(other_bhw[0], *value_range)
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
        writer.write(first_row, (_scaled(scores_hw, *value_range) if scale else scores_hw)[None], valid_hw,
                     first_column)


def enhance_features(input_path: str, output_path: str, model_path: str, mask_path: Optional[str] = None,
                     spectral_output: Optional[str] = None, spatial_output: Optional[str] = None,
                     memory_budget_mb: float = 512, use_gpu: bool = False,
                     progress: Optional[Progress] = None, undeclared_fill: bool = True) -> DetectionSummary:
    """Write the enhanced cube x + spa_f + spe_f (Float32, one band per model band, with the model bands' names
    and wavelengths), and optionally spe_f and spa_f, on the input's grid; invalid pixels become nodata
    (``undeclared_fill`` as in ``FersOptions``)."""
    started = time.perf_counter()
    progress = progress or Progress()
    if not memory_budget_mb > 0:
        raise InputError("The memory budget must be a positive number of megabytes.")
    budget = int(memory_budget_mb * 2**20)
    model, scene = _prepare(input_path, [output_path, spectral_output, spatial_output], model_path, mask_path,
                            use_gpu, undeclared_fill, budget, Stage(progress, 0.0, 0.05))
    info = scene.info
    try:
        _scan_scene(scene, model, budget, Stage(progress, 0.05, 0.1))
        features = _FeatureBlocks(scene, model, True, True, budget)
        targets = {SUM: (output_path, "enhanced"), "spe_f": (spectral_output, "spectral features"),
                   "spa_f": (spatial_output, "spatial features")}
        with ExitStack() as stack:
            sinks = {}
            for name, (path, what) in targets.items():
                if path:
                    names = [f"{band} ({what})" for band in scene.band_names]
                    sinks[name] = stack.enter_context(RasterWriter(path, info, names, scene.wavelengths_nm))
            _run_feature_pass(features, sinks, {}, Stage(progress, 0.1, 1.0))
    finally:
        scene.reader.close()
    return DetectionSummary(output_path, scene.valid_pixels, model.bands, time.perf_counter() - started)
