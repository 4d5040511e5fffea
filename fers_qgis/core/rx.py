"""RX (Reed-Xiaoli) anomaly detectors: Mahalanobis distance of each pixel spectrum to its background.

Global RX accumulates the background mean and covariance block by block (float64, pairwise-merged so that no
large sums cancel), then scores blocks against them: memory does not grow with the raster. Local RX estimates the
background in a dual window around each pixel, as Spectral Python's ``rx(window=(inner, outer))`` does, from
running sums over the leading principal components of the global background (see ``LocalBackgroundRule``).
Pixel matrices here are ``pixels_nc``: (pixels, channels).
"""
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from . import linalg


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
        self._merge_moments(count, block_mean, linalg.gram(centred))

    def merge(self, other: "BackgroundStatistics") -> "BackgroundStatistics":
        """Merge the statistics of other (disjoint) pixels into these; returns self. Blocks merged as a tree, in
        any order, give the statistics of one pass over all of them (up to rounding)."""
        if other.count:
            self._merge_moments(other.count, other.mean, other._scatter)
        return self

    def _merge_moments(self, count: int, mean: np.ndarray, scatter: np.ndarray) -> None:
        total = self.count + count
        delta = mean - self.mean
        self._scatter += scatter + np.outer(delta, delta) * (self.count * count / total)
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


@dataclass(frozen=True)
class LocalBackgroundRule:
    """How local (dual-window) RX turns the ring around a pixel into a background estimate it can trust.

    A 15 x 15 window minus a 3 x 3 guard leaves 216 ring pixels: too few for a 150-200 band covariance, whose
    estimate is then nearly singular and scores noise. Everything happens in the space whitened by the global
    background (global covariance = identity), with three remedies:

    - ``ring_pixels_per_component`` (principal components): only the leading ``ring pixels / this`` principal
      components of the global background are modelled locally; None models every component.
    - ``prior_pixels_per_component`` (shrinkage): the ring covariance is shrunk towards the global one as if the
      global background contributed this many pixels per component; a ring with fewer valid pixels is thus
      shrunk harder. 0 turns shrinkage off.
    - ``min_ring_pixels_per_component``: a ring with fewer valid pixels per component than this (and never fewer
      than components + 1) takes the global background instead: no score comes from a singular window.

    ``global_residual`` scores the components not modelled locally against the global background, so that the
    information in them is not thrown away.

    Defaults: ten samples per estimated dimension (the usual rule of thumb for a covariance estimate; 21
    components for the 3/15 windows), the global background worth one ring pixel per component, and the
    Reed-Mallett-Brennan bound (about two samples per dimension keep an estimated-covariance detector within 3 dB
    of the ideal one) as the minimum. docs/RESULTS.md gives the measurements behind them.
    """

    ring_pixels_per_component: Optional[float] = 10.0
    prior_pixels_per_component: float = 1.0
    min_ring_pixels_per_component: float = 2.0
    global_residual: bool = True

    def components(self, rank: int, ring_pixels: int) -> int:
        """How many leading principal components are modelled locally, for a full ring of ``ring_pixels``."""
        if self.ring_pixels_per_component is None:
            return rank
        return int(min(rank, max(1, ring_pixels // self.ring_pixels_per_component)))

    def minimum_ring_pixels(self, components: int) -> int:
        """Fewest valid ring pixels from which a local background is estimated."""
        return max(int(np.ceil(self.min_ring_pixels_per_component * components)), components + 1)


def window_start(position: np.ndarray, size: int, extent: int) -> np.ndarray:
    """First index of a window of ``size`` centred on ``position``, shifted to stay inside [0, extent)."""
    return np.clip(position - size // 2, 0, max(extent - size, 0))


def ring_sums(values_hwt: np.ndarray, row_starts: Tuple[np.ndarray, np.ndarray],
              column_starts: Tuple[np.ndarray, np.ndarray], outer_size: Tuple[int, int],
              inner_size: Tuple[int, int]) -> np.ndarray:
    """Sums of ``values_hwt`` over each pixel's outer window minus its inner window: (rows, columns, t).

    ``row_starts`` = (first rows of the outer windows, of the inner windows), as indices into ``values_hwt``;
    likewise ``column_starts``. Separable running sums (an integral image, one axis at a time): the cost per pixel
    does not depend on the window sizes.
    """
    height, width, channels = values_hwt.shape
    cumulative = np.zeros((height + 1, width, channels))
    np.cumsum(values_hwt, axis=0, out=cumulative[1:])
    ring = None
    for size, rows, columns in ((outer_size, row_starts[0], column_starts[0]),
                                (inner_size, row_starts[1], column_starts[1])):
        across = np.zeros((len(rows), width + 1, channels))
        np.cumsum(cumulative[rows + size[0]] - cumulative[rows], axis=1, out=across[:, 1:])
        window = across[:, columns + size[1]] - across[:, columns]
        ring = window if ring is None else np.subtract(ring, window, out=ring)
    return ring


def ring_statistics(whitened_hwk: np.ndarray, valid_hw: np.ndarray, row_starts: Tuple[np.ndarray, np.ndarray],
                    column_starts: Tuple[np.ndarray, np.ndarray], outer_size: Tuple[int, int],
                    inner_size: Tuple[int, int], max_values: int) -> np.ndarray:
    """Valid-pixel count, sum of x and packed sum of x x^T over each pixel's ring (see ``ring_sums``).

    Returns (rows, columns, 1 + k + k (k + 1) / 2): the count, the k sums, then the upper triangle of the x x^T
    sums, row by row. Products are formed a few channels at a time so that no more than about ``max_values``
    float64 values are in flight.
    """
    height, width, components = whitened_hwk.shape
    masked = np.where(valid_hw[:, :, None], whitened_hwk, 0.0)  # invalid pixels may hold NaN
    first, second = np.triu_indices(components)
    statistics = np.empty((len(row_starts[0]), len(column_starts[0]), 1 + components + first.size))
    statistics[:, :, 1 + components:] = 0
    chunk = max(1, max_values // (4 * height * width))
    statistics[:, :, :1 + components] = ring_sums(np.concatenate([valid_hw[:, :, None], masked], axis=2),
                                                  row_starts, column_starts, outer_size, inner_size)
    for start in range(0, first.size, chunk):
        pairs = slice(start, start + chunk)
        products = masked[:, :, first[pairs]] * masked[:, :, second[pairs]]
        statistics[:, :, 1 + components + start:1 + components + start + products.shape[2]] = ring_sums(
            products, row_starts, column_starts, outer_size, inner_size)
    return statistics


def local_rx_scores(centre_pk: np.ndarray, statistics_pt: np.ndarray, rule: LocalBackgroundRule) -> np.ndarray:
    """Dual-window RX score of each pixel from its ring statistics (``ring_statistics``), globally whitened.

    The background covariance is the ring's, shrunk towards the global one (the identity here) with the rule's
    prior weight; rings with too few valid pixels take the global background (mean 0, identity covariance).
    """
    components = centre_pk.shape[1]
    scores = np.einsum("pk,pk->p", centre_pk, centre_pk)  # the global background's score, kept where rings fail
    local = np.flatnonzero(statistics_pt[:, 0] >= rule.minimum_ring_pixels(components) - 0.5)
    if local.size == 0:
        return scores
    counts = statistics_pt[local, 0]
    means = statistics_pt[local, 1:components + 1] / counts[:, None]
    offsets = centre_pk[local] - means
    first, second = np.triu_indices(components)
    prior = rule.prior_pixels_per_component * components
    covariances_packed = statistics_pt[local, components + 1:] - counts[:, None] * means[:, first] * means[:, second]
    covariances_packed[:, first == second] += prior
    covariances_packed /= (counts - 1 + prior)[:, None]
    if prior > 0:
        # The Cholesky factor of [[C, d], [d^T, b]] ends with sqrt(b - d^T C^-1 d): one factorisation per pixel
        # instead of a solve. Shrinkage bounds C from below by prior / (n - 1 + prior) times the identity, so a
        # border b of twice the resulting bound on d^T C^-1 d keeps the matrix positive definite.
        bordered = np.zeros((local.size, components + 1, components + 1))
        bordered[:, second, first] = covariances_packed  # numpy's Cholesky reads the lower triangle only
        bordered[:, components, :components] = offsets
        border = 2 * np.einsum("pk,pk->p", offsets, offsets) * (counts - 1 + prior) / prior + 1
        bordered[:, components, components] = border
        last = np.linalg.cholesky(bordered)[:, components, components]
        scores[local] = border - last ** 2
    else:
        covariances = np.empty((local.size, components, components))
        covariances[:, first, second] = covariances_packed
        covariances[:, second, first] = covariances_packed
        solved = np.linalg.solve(covariances, offsets[:, :, None])[:, :, 0]
        scores[local] = np.einsum("pk,pk->p", offsets, solved)
    return scores
