"""RX (Reed-Xiaoli) anomaly detectors: Mahalanobis distance of each pixel spectrum to its background.

Global RX accumulates the background mean and covariance block by block (float64, pairwise-merged so that no
large sums cancel), then scores blocks against them: memory does not grow with the raster. Local RX estimates the
background in a dual window around each pixel, as Spectral Python's ``rx(window=(inner, outer))`` does.
Pixel matrices here are ``pixels_nc``: (pixels, channels).
"""
from typing import Optional, Tuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import linalg

# Local covariances are estimated in the globally whitened space (identity-scaled), so a fixed diagonal load keeps
# them invertible when a window holds few samples, without depending on the data's units.
LOCAL_DIAGONAL_LOAD = 1e-6


class BackgroundStatistics:
    """Streaming mean and covariance of pixel spectra (Chan et al. pairwise update, float64)."""

    def __init__(self, channels: int):
        self.count = 0
        self.mean = np.zeros(channels, dtype=np.float64)
        self._scatter = np.zeros((channels, channels), dtype=np.float64)

    def add(self, pixels_nc: np.ndarray) -> None:
        """Merge a block of pixel spectra into the running statistics."""
        count = pixels_nc.shape[0]
        if count == 0:
            return
        block_mean = pixels_nc.mean(axis=0, dtype=np.float64)
        centred = pixels_nc - block_mean
        block_scatter = linalg.gram(centred)
        total = self.count + count
        delta = block_mean - self.mean
        self._scatter += block_scatter + np.outer(delta, delta) * (self.count * count / total)
        self.mean += delta * (count / total)
        self.count = total

    @property
    def covariance(self) -> np.ndarray:
        """Unbiased covariance (denominator N - 1), the convention of the published RX."""
        return self._scatter / max(self.count - 1, 1)


def whitening_matrix(covariance: np.ndarray, relative_cutoff: Optional[float] = None) -> np.ndarray:
    """Return W (channels x rank) with ||d W||^2 = d^T pinv(covariance) d.

    Eigen-directions whose variance is below ``relative_cutoff`` times the largest one are dropped, the
    pseudo-inverse rule: constant or duplicated bands then add nothing instead of blowing up. The default cutoff
    is numpy's matrix-rank tolerance, channels * machine epsilon.
    """
    channels = covariance.shape[0]
    if relative_cutoff is None:
        relative_cutoff = channels * np.finfo(np.float64).eps
    eigenvalues, eigenvectors = np.linalg.eigh((covariance + covariance.T) / 2)
    largest = eigenvalues[-1]
    if largest <= 0:
        return np.zeros((channels, 0))
    keep = eigenvalues > relative_cutoff * largest
    return eigenvectors[:, keep] / np.sqrt(eigenvalues[keep])


def rx_scores(pixels_nc: np.ndarray, mean: np.ndarray, whitening: np.ndarray) -> np.ndarray:
    """Global RX score of each pixel: squared Mahalanobis distance to ``mean`` under the whitening matrix."""
    whitened = linalg.matmul(pixels_nc - mean, whitening)
    return np.einsum("nk,nk->n", whitened, whitened)


def window_start(position: np.ndarray, size: int, extent: int) -> np.ndarray:
    """First index of a window of ``size`` centred on ``position``, shifted to stay inside [0, extent)."""
    return np.clip(position - size // 2, 0, max(extent - size, 0))


def local_rx_rows(whitened_bhw: np.ndarray, valid_hw: np.ndarray, slab_first_row: int, image_height: int,
                  rows: Tuple[int, int], inner: int, outer: int, max_window_pixels: int) -> np.ndarray:
    """Dual-window RX scores for image rows [rows[0], rows[1]) from a slab of whitened data.

    ``whitened_bhw`` holds image rows starting at ``slab_first_row`` and must include every outer window of the
    requested rows. As in Spectral Python's code, both windows (outer x outer, smaller where the image is, and the
    inner guard window) are centred on the pixel and shifted as needed to stay inside the image. Background
    pixels are the valid pixels of the outer window outside the inner one. ``max_window_pixels`` bounds how many
    pixels' windows are gathered at once (memory).
    """
    channels, slab_height, width = whitened_bhw.shape
    outer_h, outer_w = min(outer, image_height), min(outer, width)
    first, stop = rows
    scores = np.zeros((stop - first, width), dtype=np.float64)
    cube_hwc = np.ascontiguousarray(np.moveaxis(whitened_bhw, 0, -1))
    windows_cube = sliding_window_view(cube_hwc, (outer_h, outer_w), axis=(0, 1))  # (h', w', c, oh, ow)
    windows_valid = sliding_window_view(valid_hw, (outer_h, outer_w))             # (h', w', oh, ow)
    window_rows = np.arange(outer_h)[:, None]
    window_cols = np.arange(outer_w)[None, :]
    load = LOCAL_DIAGONAL_LOAD * np.eye(channels)
    columns_per_chunk = max(1, max_window_pixels // (outer_h * outer_w))
    for row in range(first, stop):
        top = int(window_start(np.array(row), outer_h, image_height))
        inner_top = window_start(np.array(row), inner, image_height)
        inner_rows = (top + window_rows >= inner_top) & (top + window_rows < inner_top + inner)  # (oh, 1)
        for col0 in range(0, width, columns_per_chunk):
            cols = np.arange(col0, min(col0 + columns_per_chunk, width))
            lefts = window_start(cols, outer_w, width)
            gathered = windows_cube[top - slab_first_row, lefts]                         # (p, c, oh, ow)
            samples = gathered.reshape(len(cols), channels, -1)                           # (p, c, n)
            inner_lefts = window_start(cols, inner, width)[:, None, None]
            image_cols = lefts[:, None, None] + window_cols[None]
            inner_cols = (image_cols >= inner_lefts) & (image_cols < inner_lefts + inner)
            use = windows_valid[top - slab_first_row, lefts] & ~(inner_rows[None] & inner_cols)
            weights = use.reshape(len(cols), 1, -1).astype(np.float64)                    # (p, 1, n)
            counts = weights.sum(axis=2)                                                  # (p, 1)
            means = (samples * weights).sum(axis=2) / np.maximum(counts, 1)               # (p, c)
            centred = (samples - means[:, :, None]) * weights
            covariances = linalg.matmul(centred, centred.transpose(0, 2, 1)) / np.maximum(counts - 1, 1)[:, :, None]
            offsets = cube_hwc[row - slab_first_row, cols] - means                        # (p, c)
            solved = np.linalg.solve(covariances + load, offsets[:, :, None])[:, :, 0]
            scores[row - first, cols] = np.einsum("pc,pc->p", offsets, solved)
    return scores
