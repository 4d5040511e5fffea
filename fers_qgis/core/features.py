"""The FERS features of output blocks: x (the normalised model bands), spe_f (spectral branch, on the block plus
its halo of real neighbours) and spa_f (spatial branch, on the fixed tiles of an overlapping grid laid on the
scene's extent that touch the block, blended with a smooth window; each tile reads its own input and is cached for
the neighbouring blocks), and the cubes RX runs on."""
from collections import OrderedDict
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, Optional, Sequence, Tuple

import numpy as np

from . import rx
from .onnx_runtime import FersModelSet
from .pipeline import WindowPlan
from .progress import Progress
from .raster import Window
from .scene import ModelBands, ModelScene, Normalisation
from .tiling import blend_window, grown, plan_blocks, reflect_padding, tile_starts
from .workspace import RasterFile

# An estimate of what the ONNX branches hold in flight per pixel (the released spectral branch carries about a
# thousand float32 channels per pixel); it sizes blocks, it is not a hard limit.
MODEL_WORKING_BYTES_PER_PIXEL = 8192
# A scheduler that splits a feature pass into bands of rows keeps them at least this many spatial tiles tall:
# tiles straddling two bands are computed by both.
FEATURE_BAND_TILES = 8
# The cubes RX can run on.
SUM, SPATIAL, SPECTRAL, PLAIN = "x+spa_f+spe_f", "x+spa_f", "x+spe_f", "x"
# How logs name those cubes for users.
CUBE_WORDS = {SUM: "the enhanced image (bands + spatial + spectral features)",
              SPATIAL: "bands + spatial features", SPECTRAL: "bands + spectral features", PLAIN: "the model bands"}


def needed_branches(cube_names: Sequence[str]) -> Tuple[bool, bool]:
    """(spectral branch needed, spatial branch needed) for the cubes RX runs on."""
    return any(name in (SUM, SPECTRAL) for name in cube_names), any(name in (SUM, SPATIAL) for name in cube_names)


def block_context(model: FersModelSet, need_spectral: bool) -> int:
    """Rows and columns read around a block: up to 2 halo for the spectral branch, so that a thin block at the
    image edge can still be grown to the smallest tile the exported branch accepts (see FeatureBlocks._spectral).
    Spatial tiles read their own input."""
    return 2 * model.halo if need_spectral else 0


def feature_window_plan(bands: ModelBands, model: FersModelSet, cube_names: Sequence[str], budget: int
                        ) -> WindowPlan:
    """The output blocks of a feature pass within the memory budget, the same whatever the scheduler (a block's
    features do not depend on how the raster is cut, but the spatial tiles' cache works within one process)."""
    need_spectral, need_spatial = needed_branches(cube_names)
    # The window of model bands read, then x, spe_f, spa_f and the cubes combined from them.
    bytes_per_pixel = model.bands * 4 + model.bands * 4 * 8 + (
        MODEL_WORKING_BYTES_PER_PIXEL if need_spectral or need_spatial else 0)
    blocks = plan_blocks(bands.info.height, bands.info.width, bytes_per_pixel, budget,
                         block_context(model, need_spectral))
    return WindowPlan(bands.info, bands.source_bytes_per_pixel, budget,
                      tuple((r0, r1 - r0, c0, c1 - c0) for r0, r1, c0, c1 in blocks),
                      FEATURE_BAND_TILES * model.tile_size)


@contextmanager
def feature_writing(model_bands: RasterFile, normalisation: Normalisation, load_model: Callable[[], FersModelSet],
                    names: Sequence[str], with_statistics: bool, budget: int, progress: Progress
                    ) -> Iterator[Callable]:
    """A feature pass over the model bands of pass 1: write a window's named cubes (or "spe_f", "spa_f") into the
    sinks of the same names, and return the cubes' RX statistics when asked for. ``load_model`` loads the model in
    the process that runs it."""
    model = load_model()
    with ModelScene(model_bands, normalisation) as scene:
        features = FeatureBlocks(scene, model, *needed_branches(names), budget)

        def write(window: Window, sinks: Dict[str, object]) -> Optional[Dict[str, rx.BackgroundStatistics]]:
            first_row, rows, first_column, columns = window
            statistics = {name: rx.BackgroundStatistics(model.bands) for name in names} if with_statistics else {}
            cubes, valid_hw = feature_block(features, (first_row, first_row + rows, first_column,
                                                       first_column + columns), names, statistics)
            for name in names:
                sinks[name].write(first_row, cubes[name], valid_hw, first_column)
            return statistics if with_statistics else None
        yield write


class FeatureBlocks:
    """Computes x, spe_f and spa_f for output blocks of a scene."""

    def __init__(self, scene: ModelScene, model: FersModelSet, need_spectral: bool, need_spatial: bool,
                 budget: int):
        self.scene = scene
        self.model = model
        self.need_spectral = need_spectral
        self.need_spatial = need_spatial
        self.context = block_context(model, need_spectral)
        tile, bands = model.tile_size, model.bands
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
        top, bottom = grown(r0 - halo, r1 + halo, first_row, last_row, 2 * halo + 1)
        left, right = grown(c0 - halo, c1 + halo, first_column, last_column, 2 * halo + 1)
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
        weighted = np.empty((self.model.bands, tile_h, tile_w))  # one scratch tile for every product below

        def add(row, col, tile_features):
            top, bottom = max(row, r0), min(row + tile_h, r1)
            left, right = max(col, c0), min(col + tile_w, c1)
            weights = np.outer(row_weights[top - row:bottom - row], col_weights[left - col:right - col])
            product = np.multiply(tile_features[:, top - row:bottom - row, left - col:right - col], weights,
                                  out=weighted[:, :bottom - top, :right - left])
            accumulated[:, top - r0:bottom - r0, left - c0:right - c0] += product
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
        accumulated /= weight_sum
        return accumulated

    def _remember(self, place: Tuple[int, int], tile_features: np.ndarray) -> None:
        """Keep a tile's features for the next blocks, dropping the least recently used beyond the capacity."""
        if self._cache_capacity == 0:
            return
        self._tile_cache[place] = tile_features.copy()  # a copy: a view would keep the whole batch alive
        while len(self._tile_cache) > self._cache_capacity:
            self._tile_cache.popitem(last=False)


def combine(spatial_bhw, spectral_bhw, x_bhw, name: str) -> np.ndarray:
    """One of the cubes RX can run on, summed in float64 and stored as the float32 the temporary rasters hold."""
    if name == PLAIN:
        return x_bhw
    total = x_bhw.astype(np.float64)
    if name in (SPATIAL, SUM):
        total += spatial_bhw
    if name in (SPECTRAL, SUM):
        total += spectral_bhw
    return total.astype(np.float32)


def feature_block(features: FeatureBlocks, block: Tuple[int, int, int, int], names: Sequence[str],
                  statistics: Dict[str, rx.BackgroundStatistics]) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
    """The named cubes (or "spe_f", "spa_f") of one output block (row0, row1, col0, col1) and its valid pixels;
    cubes named in ``statistics`` are added to them."""
    x_bhw, spectral_bhw, spatial_bhw, valid_hw = features.compute(block)
    cubes = {}
    for name in names:
        if name == "spe_f":
            cubes[name] = spectral_bhw
        elif name == "spa_f":
            cubes[name] = spatial_bhw
        else:
            cubes[name] = combine(spatial_bhw, spectral_bhw, x_bhw, name)
        if name in statistics and valid_hw.any():
            # Statistics of the float32 values the scoring pass will read back, so both agree exactly.
            statistics[name].add(cubes[name][:, valid_hw].astype(np.float32, copy=False).T)
    return cubes, valid_hw
