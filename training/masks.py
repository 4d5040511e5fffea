"""Synthetic anomalies pasted into background tiles (AETNet's random masks, spec section 2.5).

A keep mask (rows, columns) holds 1 for background and 0 for pasted target pixels; labels are 1 - mask. All
randomness comes from an explicit ``numpy.random.Generator`` and positions are integers (spec D15, D16).
"""
from typing import Tuple

import numpy as np

from fers_qgis.core.spectral import NORMALISATION_SCALE

PASTE_KINDS = ("no", "zero", "random", "sin")
CELL = 8
MAX_TARGETS = 32
AREA_RANGE = (3, 20)
CANVAS = 19  # a blob grows inside a 19 x 19 canvas centred on its seed: at most 9 px from it
_NEIGHBOURS = ((-1, 0), (1, 0), (0, -1), (0, 1))


def grow_blob(area: int, rng: np.random.Generator) -> np.ndarray:
    """(CANVAS, CANVAS) bool 4-connected blob of exactly ``area`` pixels grown from the centre.

    Each sweep visits the blob's current background 4-neighbours and adds each with probability 1/2, stopping as
    soon as the blob has ``area`` pixels.
    """
    blob = np.zeros((CANVAS, CANVAS), dtype=bool)
    centre = CANVAS // 2
    blob[centre, centre] = True
    count = 1
    while count < area:
        grown = np.zeros_like(blob)
        grown[1:] |= blob[:-1]
        grown[:-1] |= blob[1:]
        grown[:, 1:] |= blob[:, :-1]
        grown[:, :-1] |= blob[:, 1:]
        for row, column in np.argwhere(grown & ~blob):
            if rng.random() < 0.5:
                blob[row, column] = True
                count += 1
                if count == area:
                    break
    return blob


def random_mask(rng: np.random.Generator, size: int = 64, max_targets: int = MAX_TARGETS,
                area_range: Tuple[int, int] = AREA_RANGE) -> np.ndarray:
    """(size, size) uint8 keep mask: T ~ U{1..max_targets} blobs seeded in distinct 8 x 8 cells."""
    mask = np.ones((size, size), dtype=np.uint8)
    cells_per_side = size // CELL
    cells = cells_per_side * cells_per_side
    targets = int(rng.integers(1, min(max_targets, cells) + 1))
    half = CANVAS // 2
    for cell in rng.choice(cells, size=targets, replace=False):
        seed_row = int(cell // cells_per_side) * CELL + int(rng.integers(0, CELL))
        seed_column = int(cell % cells_per_side) * CELL + int(rng.integers(0, CELL))
        blob = grow_blob(int(rng.integers(area_range[0], area_range[1] + 1)), rng)
        rows, columns = np.nonzero(blob)
        rows = rows - half + seed_row
        columns = columns - half + seed_column
        inside = (rows >= 0) & (rows < size) & (columns >= 0) & (columns < size)
        mask[rows[inside], columns[inside]] = 0
    return mask


def paste(tile_bhw: np.ndarray, mask_hw: np.ndarray, kind: str, rng: np.random.Generator,
          scale: float = NORMALISATION_SCALE) -> Tuple[np.ndarray, np.ndarray]:
    """Paste targets where ``mask_hw`` is 0; returns (pasted tile (B, H, W), labels (H, W) uint8, 1 = target).

    ``no`` leaves the tile and gives zero labels; ``zero`` sets target pixels to 0; ``random`` fills them with
    i.i.d. uniform values in [-scale, scale]; ``sin`` gives all of them one spectrum scale * sin(phi + 2 pi t),
    t evenly spaced over [0, 1] and phi ~ U(0, pi).
    """
    if kind not in PASTE_KINDS:
        raise ValueError(f"Unknown paste kind {kind!r}; choose one of {', '.join(PASTE_KINDS)}.")
    if kind == "no":
        return tile_bhw.copy(), np.zeros(mask_hw.shape, dtype=np.uint8)
    target = mask_hw == 0
    pasted = tile_bhw.copy()
    bands = tile_bhw.shape[0]
    if kind == "zero":
        pasted[:, target] = 0.0
    elif kind == "random":
        pasted[:, target] = rng.uniform(-scale, scale, size=(bands, int(target.sum())))
    else:
        phase = rng.uniform(0.0, np.pi)
        spectrum = scale * np.sin(phase + 2.0 * np.pi * np.linspace(0.0, 1.0, bands))
        pasted[:, target] = spectrum[:, None]
    return pasted, target.astype(np.uint8)


def paste_batch(tiles_nbhw: np.ndarray, rng: np.random.Generator, kinds: Tuple[str, ...] = PASTE_KINDS,
                max_targets: int = MAX_TARGETS) -> Tuple[np.ndarray, np.ndarray]:
    """Random masks and paste kinds per tile: (pasted (N, B, H, W) float32, labels (N, 1, H, W) float32)."""
    pasted = np.empty_like(tiles_nbhw)
    labels = np.zeros((tiles_nbhw.shape[0], 1) + tiles_nbhw.shape[2:], dtype=np.float32)
    size = tiles_nbhw.shape[-1]
    if tiles_nbhw.shape[-2] != size:
        raise ValueError("Masks are drawn for square tiles.")
    for index, tile in enumerate(tiles_nbhw):
        kind = kinds[int(rng.integers(0, len(kinds)))]
        pasted[index], labels[index, 0] = paste(tile, random_mask(rng, size, max_targets), kind, rng)
    return pasted, labels
