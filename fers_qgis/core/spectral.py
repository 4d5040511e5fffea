"""How a raster's bands become a model's B input bands, and how they are normalised.

The one definition shared by the plugin and the training package, so that a model and the plugin never disagree
about what a pixel means; exported models record the choices in their metadata (see ``model_format``).

Band modes (over the bands in file order, reversed when the file lists them from long to short wavelengths):
- ``first``: the first B bands, as published (AETNet's "first 50/100/200 bands"); needs at least B bands.
- ``resample``: B bands spread evenly over the raster's full spectral range, linearly interpolated between
  neighbouring good source bands (bad bands are skipped, never read), by wavelength when every band has one,
  else by band number. A raster with fewer good bands than B gets interpolated bands in between (no band's
  information is lost); one with more is read at B evenly spread wavelengths.
A model that records the wavelengths of its training bands is fed by wavelength whenever the raster has them.

Normalisation: one min and one max over all selected values of the image (a training tile, or the whole scene in
the plugin), mapped to [-scale, scale] (published: scale 0.1), with an epsilon so constant images stay finite.
``minmax`` takes the exact extremes; ``robust`` the extremes inside outlier fences, clipping values beyond them
(the same numbers on clean images, see ``robust_range``).
"""
import re
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from . import linalg
from .errors import InputError

BAND_MODES = ("first", "resample")
NORMALISATIONS = ("minmax", "robust")
NORMALISATION_SCALE = 0.1
NORMALISATION_EPSILON = 1e-12
# Outlier fences of the robust range: FENCE_SPANS times the span between these percentiles beyond them. The
# training and small/ scenes reach at most 1.3 spans beyond (eval/'s pavia_centre 4.5, bright roofs); 65535 in
# a reflectance x 1e4 scene lies 10 or more beyond.
FENCE_PERCENTILES = (1.0, 99.0)
FENCE_SPANS = 5.0
SAMPLE_VALUES = 1 << 20  # values a scene's robust range is computed from (8 MB); every value of smaller scenes


def known_wavelengths(wavelengths_nm: Optional[Sequence[Optional[float]]]) -> Optional[np.ndarray]:
    """The band centres as an array when every band has one and no two are equal, else None."""
    if wavelengths_nm is None or len(wavelengths_nm) == 0 or any(w is None or not np.isfinite(w)
                                                                 for w in wavelengths_nm):
        return None
    candidate = np.asarray(wavelengths_nm, dtype=np.float64)
    return candidate if np.unique(candidate).size == candidate.size else None


def band_matrix(source_bands: int, model_bands: int, mode: str,
                wavelengths_nm: Optional[Sequence[Optional[float]]] = None,
                model_wavelengths_nm: Sequence[float] = (), usable: Optional[Sequence[bool]] = None) -> np.ndarray:
    """(model_bands, source_bands) matrix M with model_cube = M @ source_cube (bands first).

    ``usable`` (one flag per source band; default all) marks the good bands: ``resample`` spreads the model
    bands over them only, so no model band reads a bad band.

    A model that records its training wavelengths is fed by wavelength when the raster has them (linear
    interpolation between the nearest source bands). Otherwise ``mode`` decides, over the bands in file order,
    reversed when the file lists them from long to short wavelengths (PRISMA's VNIR cube); spectrometer overlaps
    such as AVIRIS bands 32 and 33 keep the sensor's order, which is the order models were trained on. Bad
    bands are handled after this matrix, by ``validity.fill_bad_model_bands``.
    """
    if mode not in BAND_MODES:
        raise InputError(f"Unknown band mode {mode!r}; choose one of {', '.join(BAND_MODES)}.")
    wavelengths = known_wavelengths(wavelengths_nm)
    if wavelengths is not None and len(wavelengths) != source_bands:
        wavelengths = None
    by_wavelength = len(model_wavelengths_nm) > 0 and wavelengths is not None
    if mode == "first" and not by_wavelength and source_bands < model_bands:
        raise InputError(
            f"This model uses the first {model_bands} bands, but the raster has only {source_bands}: choose a "
            f"model that resamples bands, or a model with at most {source_bands} bands.")
    if by_wavelength:
        order = np.argsort(wavelengths)
        axis = wavelengths[order]
    else:
        descending = wavelengths is not None and wavelengths[0] > wavelengths[-1]
        order = np.arange(source_bands)[::-1] if descending else np.arange(source_bands)
        axis = np.arange(source_bands, dtype=np.float64)
        if wavelengths is not None and np.all(np.diff(wavelengths[order]) > 0):
            axis = wavelengths[order]
    if source_bands < 2:
        raise InputError(f"A FERS model needs at least 2 bands; the raster has {source_bands}.")
    if mode == "resample" and not by_wavelength and usable is not None:
        good = np.asarray(usable, dtype=bool)[order]
        if good.sum() < 2:
            raise InputError(f"A FERS model needs at least 2 good bands; the raster has {int(good.sum())}.")
        order, axis = order[good], axis[good]
    if by_wavelength:
        targets = np.asarray(model_wavelengths_nm, dtype=np.float64)
        _check_coverage(targets, axis)
    elif mode == "first":
        targets = axis[:model_bands]
    else:
        targets = np.linspace(axis[0], axis[-1], model_bands)
    return _interpolation_matrix(targets, axis, order, source_bands)


def _check_coverage(targets_nm: np.ndarray, available_nm: np.ndarray) -> None:
    """Refuse a raster that does not span the model's wavelengths; up to two model band spacings beyond the
    raster's first or last band are filled from that band."""
    spacing = float(np.median(np.diff(np.sort(targets_nm)))) if targets_nm.size > 1 else 0.0
    if targets_nm.min() < available_nm[0] - 2 * spacing or targets_nm.max() > available_nm[-1] + 2 * spacing:
        raise InputError(
            f"This model reads {targets_nm.min():.0f}-{targets_nm.max():.0f} nm (the wavelengths it was trained "
            f"on), but the raster's usable bands cover {available_nm[0]:.0f}-{available_nm[-1]:.0f} nm: choose a "
            "model trained on this sensor's range, or use RX.")


def _interpolation_matrix(targets: np.ndarray, axis: np.ndarray, columns: np.ndarray, source_bands: int
                          ) -> np.ndarray:
    """Rows that interpolate each target linearly between its neighbours on ``axis`` (ascending, of the source
    bands ``columns``); a target on a band selects it, one beyond either end takes the end band."""
    clamped = np.clip(targets, axis[0], axis[-1])
    upper = np.clip(np.searchsorted(axis, clamped, side="right"), 1, axis.size - 1)
    lower = upper - 1
    weight_upper = (clamped - axis[lower]) / (axis[upper] - axis[lower])
    matrix = np.zeros((targets.size, source_bands))
    rows = np.arange(targets.size)
    np.add.at(matrix, (rows, columns[lower]), 1.0 - weight_upper)
    np.add.at(matrix, (rows, columns[upper]), weight_upper)
    return matrix


def to_model_bands(cube_bhw: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a band matrix to a (bands, rows, columns) cube; a pure selection is done without arithmetic."""
    if np.all((matrix == 0) | (matrix == 1)) and np.all(matrix.sum(axis=1) == 1):
        return cube_bhw[matrix.argmax(axis=1)]
    pixels_bn = cube_bhw.reshape(cube_bhw.shape[0], -1)
    return linalg.matmul(matrix, pixels_bn).reshape(matrix.shape[0], *cube_bhw.shape[1:])


def robust_range(values: np.ndarray) -> Tuple[float, float]:
    """(low, high): the min and max of the values inside outlier fences set FENCE_SPANS times the 1-99 percentile
    span beyond those percentiles. A clean image keeps its exact range; a few saturated or dead pixels far out
    (65535 in every band) no longer compress every other pixel into a sliver of the model's input range."""
    values = np.asarray(values, dtype=np.float64).ravel()
    low, high = np.percentile(values, FENCE_PERCENTILES)
    span = high - low
    inside = values[(values >= low - FENCE_SPANS * span) & (values <= high + FENCE_SPANS * span)]
    return float(inside.min()), float(inside.max())


class SceneRange:
    """A scene's value range for its normaliser, block by block in bounded memory: the exact min and max, and the
    model-band values of the valid pixels whose number in the raster (row x width + column) is a multiple of a
    stride, for the robust one. The stride starts at 1 and doubles whenever the sample would pass SAMPLE_VALUES
    values, so a scene of up to that many valid values is sampled whole, however much fill surrounds it. The
    sample is the same however the raster is cut into blocks and in whatever order they merge (the stride ends
    as the smallest power of two whose sample fits), so the normalisation does not depend on the memory budget
    or on the number of workers."""

    def __init__(self):
        self.stride = 1
        self.minimum, self.maximum = np.inf, -np.inf
        self._samples: List[Tuple[np.ndarray, np.ndarray]] = []  # (pixel numbers, values_bn) of each block

    def add(self, values_bn: np.ndarray, pixel_numbers: np.ndarray) -> None:
        """Values (bands, valid pixels) of one block, and those pixels' numbers in the raster."""
        self.minimum = min(self.minimum, float(values_bn.min()))
        self.maximum = max(self.maximum, float(values_bn.max()))
        kept = pixel_numbers % self.stride == 0
        while self.sampled_values + values_bn.shape[0] * np.count_nonzero(kept) > SAMPLE_VALUES:
            self._thin_to(2 * self.stride)
            kept = pixel_numbers % self.stride == 0
        self._samples.append((pixel_numbers[kept], values_bn[:, kept].astype(np.float64, copy=False)))

    def merge(self, other: "SceneRange") -> "SceneRange":
        """Merge another block's range into this one; returns self."""
        self.minimum, self.maximum = min(self.minimum, other.minimum), max(self.maximum, other.maximum)
        self._samples = self._samples + other._samples
        self._thin_to(max(self.stride, other.stride))
        while self.sampled_values > SAMPLE_VALUES:
            self._thin_to(2 * self.stride)
        return self

    def _thin_to(self, stride: int) -> None:
        """Keep the pixels whose numbers are multiples of ``stride`` (copies: a view would keep the whole sample
        alive)."""
        self.stride = stride
        kept = [numbers % self.stride == 0 for numbers, _ in self._samples]
        self._samples = [(numbers[keep], values[:, keep]) if not keep.all() else (numbers, values)
                         for (numbers, values), keep in zip(self._samples, kept)]

    @property
    def sampled_values(self) -> int:
        return sum(values.size for _, values in self._samples)

    def normaliser(self, method: str, scale: float = NORMALISATION_SCALE) -> "MinMaxNormaliser":
        """The scene's normaliser by a NORMALISATIONS method."""
        if method == "minmax":
            return MinMaxNormaliser(self.minimum, self.maximum, scale)
        return MinMaxNormaliser.fit(np.concatenate([values.ravel() for _, values in self._samples]), scale, method)


@dataclass(frozen=True)
class MinMaxNormaliser:
    """Maps [minimum, maximum] linearly onto [-scale, scale]; ``clip`` first clips values to that range."""

    minimum: float
    maximum: float
    scale: float = NORMALISATION_SCALE
    clip: bool = False

    @classmethod
    def fit(cls, values: np.ndarray, scale: float = NORMALISATION_SCALE,
            method: str = "minmax") -> "MinMaxNormaliser":
        """Statistics of one image held in memory (a training tile, a small scene), by a NORMALISATIONS method."""
        if method == "minmax":
            return cls(float(np.min(values)), float(np.max(values)), scale)
        return cls(*robust_range(values), scale, clip=True)

    def merged(self, other: "MinMaxNormaliser") -> "MinMaxNormaliser":
        """Statistics of two blocks together: how the plugin builds scene statistics block by block."""
        return MinMaxNormaliser(min(self.minimum, other.minimum), max(self.maximum, other.maximum), self.scale,
                                self.clip)

    def apply(self, values: np.ndarray) -> np.ndarray:
        """The normalised values, a new array (float32 for float32 values); ``values`` is left as it is."""
        # ((clipped values - minimum) / span * 2 - 1) * scale, step by step in one new array: a 200-band window
        # is large (np.clip itself is several times slower than maximum and minimum).
        if self.clip:
            result = np.maximum(values, self.minimum)
            np.minimum(result, self.maximum, out=result)
            result -= self.minimum
        else:
            result = np.subtract(values, self.minimum)
        result /= self.maximum - self.minimum + NORMALISATION_EPSILON
        result *= 2.0
        result -= 1.0
        result *= self.scale
        return result


# Band selections as users type them: band numbers and ranges, or wavelength ranges.
_UNITS_NM = {"nm": 1.0, "nanometers": 1.0, "nanometres": 1.0, "um": 1000.0, "µm": 1000.0, "μm": 1000.0,
             "micrometers": 1000.0, "micrometres": 1000.0, "microns": 1000.0}
_NUMBER = r"\d+(?:\.\d*)?|\.\d+"
_ITEM = re.compile(rf"^\s*({_NUMBER})\s*(?:-\s*({_NUMBER}))?\s*([^\d\s.,;-][^\d,;-]*)?\s*$")
BAND_SELECTION_HELP = ("band numbers and ranges such as 1-50 or 1-10,20-30, or wavelength ranges such as "
                       "400-1000 nm or 0.4-1.0 um")


def format_band_numbers(numbers: Sequence[int]) -> str:
    """Band numbers as a short list of runs: "1-3, 7"."""
    runs: List[List[int]] = []
    for number in sorted(set(numbers)):
        if runs and number == runs[-1][1] + 1:
            runs[-1][1] = number
        else:
            runs.append([number, number])
    return ", ".join(str(first) if first == last else f"{first}-{last}" for first, last in runs)


def parse_band_selection(text: str, band_count: int,
                         wavelengths_nm: Sequence[Optional[float]] = ()) -> Tuple[int, ...]:
    """1-based band numbers (ascending, no repeats) from text such as "1-50", "1-10, 20-30", "7;9",
    "400-1000 nm" or "0.4-1.0 um, 1.5-1.7 um" (a unit written once at the end applies to every range; a single
    wavelength takes the nearest band). Raises InputError with a sentence a user can act on."""
    items = [item for item in re.split(r"[,;]", text) if item.strip()]
    if not items:
        raise InputError(f"The band selection is empty: give {BAND_SELECTION_HELP}.")
    parsed = []
    for item in items:
        match = _ITEM.match(item)
        unit = match.group(3).strip().lower() if match and match.group(3) else None
        if not match or (unit is not None and unit not in _UNITS_NM):
            raise InputError(f"Cannot read the band selection {text.strip()!r} (at {item.strip()!r}): give "
                             f"{BAND_SELECTION_HELP}.")
        first, last = float(match.group(1)), float(match.group(2) or match.group(1))
        if last < first:
            raise InputError(f"The range {item.strip()!r} runs backwards: write the smaller value first.")
        parsed.append((first, last, unit))
    units = {unit for _, _, unit in parsed if unit is not None}
    if len(units) > 1:
        raise InputError(f"The band selection {text.strip()!r} mixes units: use one unit for every range.")
    if units:
        return _bands_in_wavelength_ranges(text, parsed, _UNITS_NM[units.pop()], wavelengths_nm)
    if any(not value.is_integer() for first, last, _ in parsed for value in (first, last)):
        raise InputError(f"Band numbers are whole numbers; for wavelengths add the unit, e.g. "
                         f"{text.strip()} nm.")
    numbers = sorted({number for first, last, _ in parsed for number in range(int(first), int(last) + 1)})
    check_band_numbers(numbers, band_count)
    return tuple(numbers)


def check_band_numbers(numbers: Sequence[int], band_count: int) -> None:
    """Refuse 1-based band numbers the raster does not have, naming them as runs."""
    missing = [number for number in numbers if not 1 <= number <= band_count]
    if missing:
        raise InputError(f"Band {'numbers' if len(missing) > 1 else 'number'} {format_band_numbers(missing)} "
                         f"{'do' if len(missing) > 1 else 'does'} not exist: the raster has bands 1 to "
                         f"{band_count}.")


def _bands_in_wavelength_ranges(text: str, ranges, to_nm: float,
                                wavelengths_nm: Sequence[Optional[float]]) -> Tuple[int, ...]:
    """Bands whose centre lies in one of the (first, last, unit) ranges; a single value takes the nearest band."""
    known = [(number, w) for number, w in enumerate(wavelengths_nm, start=1) if w is not None]
    if not known:
        raise InputError(f"The raster's bands have no wavelengths, so {text.strip()!r} cannot be matched: give "
                         "band numbers such as 1-50 instead.")
    numbers = set()
    for first, last, _ in ranges:
        low, high = first * to_nm, last * to_nm
        if low == high:
            numbers.add(min(known, key=lambda band: abs(band[1] - low))[0])
        else:
            numbers.update(number for number, w in known if low <= w <= high)
    if not numbers:
        covered = [w for _, w in known]
        raise InputError(f"No band lies in {text.strip()!r}: the raster's bands cover {min(covered):.0f} to "
                         f"{max(covered):.0f} nm.")
    return tuple(sorted(numbers))
