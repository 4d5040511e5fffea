"""How a raster's bands become a model's B input bands, and how they are normalised.

The one definition shared by the plugin and the training package, so that a model and the plugin never disagree
about what a pixel means; exported models record the choices in their metadata (see ``model_format``).

Band modes:
- ``first``: the first B bands, as published (AETNet's "first 50/100/200 bands"); needs at least B bands.
- ``resample``: B bands spread evenly over the raster's full spectral range, linearly interpolated between
  neighbouring source bands, by wavelength when every band has one, else by band position.

Normalisation: one min and one max over all selected values of the image (a training tile, or the whole scene in
the plugin), mapped to [-scale, scale] (published: scale 0.1), with an epsilon so constant images stay finite.
"""
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from . import linalg
from .errors import InputError

BAND_MODES = ("first", "resample")
NORMALISATION_SCALE = 0.1
NORMALISATION_EPSILON = 1e-12


def band_matrix(source_bands: int, model_bands: int, mode: str,
                wavelengths_nm: Optional[Sequence[Optional[float]]] = None) -> np.ndarray:
    """(model_bands, source_bands) matrix M with model_cube = M @ source_cube (bands first)."""
    if mode not in BAND_MODES:
        raise InputError(f"Unknown band mode {mode!r}; choose one of {', '.join(BAND_MODES)}.")
    if mode == "first":
        if source_bands < model_bands:
            raise InputError(
                f"This model uses the first {model_bands} bands, but the raster has only {source_bands}: choose a "
                f"model that resamples bands, or a model with at most {source_bands} bands.")
        matrix = np.zeros((model_bands, source_bands))
        matrix[np.arange(model_bands), np.arange(model_bands)] = 1.0
        return matrix
    if source_bands < 2:
        raise InputError("Resampling bands needs a raster with at least 2 bands.")
    positions = np.arange(source_bands, dtype=np.float64)
    if wavelengths_nm is not None and all(w is not None for w in wavelengths_nm):
        candidate = np.asarray(wavelengths_nm, dtype=np.float64)
        if np.all(np.diff(candidate) > 0):
            positions = candidate
    targets = np.linspace(positions[0], positions[-1], model_bands)
    upper = np.clip(np.searchsorted(positions, targets, side="right"), 1, source_bands - 1)
    lower = upper - 1
    weight_upper = (targets - positions[lower]) / (positions[upper] - positions[lower])
    matrix = np.zeros((model_bands, source_bands))
    rows = np.arange(model_bands)
    np.add.at(matrix, (rows, lower), 1.0 - weight_upper)
    np.add.at(matrix, (rows, upper), weight_upper)
    return matrix


def to_model_bands(cube_bhw: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a band matrix to a (bands, rows, columns) cube; a pure selection is done without arithmetic."""
    selected = np.flatnonzero(matrix.sum(axis=0))
    if np.array_equal(matrix, np.eye(matrix.shape[1])[selected]) and selected.size == matrix.shape[0]:
        return cube_bhw[selected]
    pixels_bn = cube_bhw.reshape(cube_bhw.shape[0], -1)
    return linalg.matmul(matrix, pixels_bn).reshape(matrix.shape[0], *cube_bhw.shape[1:])


@dataclass(frozen=True)
class MinMaxNormaliser:
    """Maps [minimum, maximum] linearly onto [-scale, scale]."""

    minimum: float
    maximum: float
    scale: float = NORMALISATION_SCALE

    @classmethod
    def fit(cls, values: np.ndarray, scale: float = NORMALISATION_SCALE) -> "MinMaxNormaliser":
        """Statistics of one image held in memory (a training tile, a small scene)."""
        return cls(float(np.min(values)), float(np.max(values)), scale)

    def merged(self, other: "MinMaxNormaliser") -> "MinMaxNormaliser":
        """Statistics of two blocks together: how the plugin builds scene statistics block by block."""
        return MinMaxNormaliser(min(self.minimum, other.minimum), max(self.maximum, other.maximum), self.scale)

    def apply(self, values: np.ndarray) -> np.ndarray:
        span = self.maximum - self.minimum + NORMALISATION_EPSILON
        return ((values - self.minimum) / span * 2.0 - 1.0) * self.scale
