"""How FERS cuts a raster: output blocks within the memory budget, and the overlapping grid of fixed-size tiles
the spatial branch runs on (blended with a smooth window, so their seams do not show)."""
import math
from dataclasses import dataclass
from typing import Iterator, List, Tuple

import numpy as np

# Strip heights are multiples of this when strips are taller: the tile heights of the files written here.
ALIGNED_ROWS = 256
# Smallest block side: smaller blocks would spend most of their time on halo and overlapping tiles.
MIN_BLOCK_SIDE = 16


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


def grown(start: int, stop: int, low: int, high: int, smallest: int) -> Tuple[int, int]:
    """[start, stop) clipped to [low, high), then grown inside it to at least ``smallest`` (more real
    neighbours never change a local operator's result)."""
    start, stop = max(low, start), min(high, stop)
    missing = min(smallest, high - low) - (stop - start)
    if missing > 0:
        start = max(low, start - missing)
        stop = min(high, start + max(smallest, stop - start))
    return start, stop
