"""Which bands and pixels of a raster are valid: the rules RX, FERS, enhancement, objects and training share.

Sensor products mark what is not data in many ways, and the decision is made the way the imaging-spectroscopy
community makes it (ENVI and EnMAP-Box bad-band lists, product quality flags): bands first, then pixels.

1. **Bad bands** are left out of every job that reads all bands, and the log says which and why:
   - flagged by metadata: an ENVI bad-band list (``bbl``, 0 = bad) in the dataset's ENVI metadata domain, or a
     band's own ``bbl`` item; alpha (transparency) bands;
   - no valid value at all (entirely nodata, NaN or masked out);
   - one value over every valid pixel (constant);
   - invalid (nodata or NaN) on more than ``BAD_BAND_INVALID_SHARE`` of the pixels that are otherwise valid
     (valid in at least half of the bands): e.g. int16 reflectance declaring nodata=0 whose water-absorption
     bands hold real zeros;
   - nodata (or NaN) scattered over real pixels of several bands, each under that share but together over it:
     those bands, worst first (``_leave_out_scattered_nodata_bands``).
2. **Pixels** are decided on the remaining bands by ``BlockReader``: GDAL's mask (internal or .msk mask, alpha),
   the mask raster, NaN/Inf and nodata in any remaining band, and (on by default) undeclared fill: one value in
   every band.

The scan behind these decisions is one extra pass over the bands a job may read, in bounded memory.
"""
import os
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .errors import InputError
from .progress import Progress
from .raster import (MIN_BANDS_FOR_UNDECLARED_FILL, BlockReader, RasterInfo, block_windows, iter_blocks,
                     open_dataset)
from .spectral import format_band_numbers

# A band invalid on more than this share of the otherwise valid pixels is left out rather than those pixels.
BAD_BAND_INVALID_SHARE = 0.05
# Bands whose nodata falls on scattered real pixels are left out, once together they exceed that share, until the
# bands kept leave out at most this share (one such band kept would drop its pixels for nothing).
SCATTERED_NODATA_KEPT_SHARE = 0.005
# Fill values named in the log, most frequent first.
_FILL_VALUES_LOGGED = 3


@dataclass(frozen=True)
class ValidityOptions:
    """How pixels are judged; ``undeclared_fill``: a pixel with one value in every band is fill."""

    undeclared_fill: bool = True


@dataclass
class SceneValidity:
    """What the scan decided about a raster's bands and fill."""

    bands: Tuple[int, ...]                                  # the bands examined (1-based)
    bad_bands: Dict[int, str] = field(default_factory=dict)  # band -> why it is left out
    fill_pixels: int = 0                                    # removed by the undeclared-fill rule
    fill_values: Tuple[float, ...] = ()                     # their values, most frequent first
    gdal_masked_pixels: int = 0                             # removed by GDAL's mask or the mask raster
    mask_note: Optional[str] = None                         # how the mask raster was placed, what it removed
    invalid_everywhere: int = 0                             # nodata or NaN in every band
    band_losses: Dict[int, int] = field(default_factory=dict)  # good band -> otherwise valid pixels it leaves out

    @property
    def good_bands(self) -> Tuple[int, ...]:
        return tuple(band for band in self.bands if band not in self.bad_bands)

    def report(self, progress: Progress, name: str) -> None:
        """Say in the log what was left out and why."""
        if self.mask_note:
            progress.info(self.mask_note)
        if self.bad_bands:
            reasons: Dict[str, List[int]] = {}
            for band, reason in self.bad_bands.items():
                reasons.setdefault(reason, []).append(band)
            parts = [f"{band_ranges(bands)} ({reason})" for reason, bands in reasons.items()]
            progress.info(f"{name}: {len(self.bad_bands)} bad band(s) left out: " + "; ".join(parts) + ".")
        if self.gdal_masked_pixels:
            progress.info(f"{name}: {self.gdal_masked_pixels} pixels are fill by the raster's own mask (GDAL mask "
                          f"band, alpha band) or the mask raster.")
        if self.invalid_everywhere:
            progress.info(f"{name}: {self.invalid_everywhere} pixels are nodata or NaN in every band.")
        if self.band_losses:
            counts = ", ".join(f"band {band}: {count}" for band, count in sorted(self.band_losses.items()))
            progress.info(f"{name}: pixels valid in most bands but nodata or NaN in some are left out; pixels per "
                          f"band: {counts}.")
        if self.fill_pixels:
            values = ", ".join(f"{value:g}" for value in self.fill_values)
            progress.info(f"{name}: {self.fill_pixels} pixels hold one value in every band ({values}) and are "
                          f"treated as undeclared fill (turn this off with the 'undeclared fill' option).")


def band_ranges(bands: Sequence[int]) -> str:
    """'band 4' or 'bands 1-3, 7' for a list of band numbers."""
    text = format_band_numbers(bands)
    return f"band {text}" if len(bands) == 1 else f"bands {text}"


def flagged_bands(info: RasterInfo) -> Dict[int, str]:
    """Bands marked bad by metadata: an ENVI bad-band list (dataset-level ``bbl`` in the ENVI domain, or a band's
    own ``bbl``; 0 = bad), and alpha bands."""
    dataset = open_dataset(info.path)
    flagged: Dict[int, str] = {}
    listed = (dataset.GetMetadata("ENVI") or {}).get("bbl")
    if listed:
        values = [item.strip() for item in listed.strip().strip("{}").split(",") if item.strip()]
        if len(values) == info.band_count:
            for index, value in enumerate(values):
                if _is_zero(value):
                    flagged[index + 1] = "marked bad in the ENVI bad-band list"
    for index in range(info.band_count):
        band = dataset.GetRasterBand(index + 1)
        for domain in ("ENVI", ""):
            value = (band.GetMetadata(domain) or {}).get("bbl")
            if value is not None and _is_zero(value):
                flagged[index + 1] = "marked bad in the ENVI bad-band list"
    for band in info.alpha_bands:
        flagged[band] = "alpha band (transparency, not a spectral band)"
    return flagged


def _is_zero(value: str) -> bool:
    try:
        return float(value) == 0
    except ValueError:
        return False


class _BandTally:
    """Per-band counts and ranges gathered by the scan."""

    def __init__(self, bands: int):
        self.valid = np.zeros(bands, dtype=np.int64)          # valid anywhere
        self.non_finite = np.zeros(bands, dtype=np.int64)
        self.allowed = 0                                      # pixels the masks allow
        self.reference = 0                                    # otherwise valid pixels
        self.valid_in_reference = np.zeros(bands, dtype=np.int64)
        self.low = np.full(bands, np.inf)
        self.high = np.full(bands, -np.inf)
        self.fill_counts: Dict[float, int] = {}
        self.invalid_everywhere = 0                           # allowed pixels invalid in every examined band


# Called with each window of the scan: (cube_bhw, pixels valid in every scanned band and not undeclared fill).
WindowObserver = Callable[[np.ndarray, np.ndarray], None]


def assess_scene(info: RasterInfo, bands: Sequence[int], mask_path: Optional[str] = None,
                 options: ValidityOptions = ValidityOptions(), budget: int = 64 * 2**20,
                 progress: Optional[Progress] = None, observe: Optional[WindowObserver] = None) -> SceneValidity:
    """Scan ``bands`` of a raster (one pass, bounded memory) and decide its bad bands and undeclared fill.

    ``observe`` sees every window with the pixels that are valid if no band turns out bad: then they are exactly
    the pixels a reader of ``bands`` finds valid, so a job can gather its statistics in this pass."""
    bands = tuple(bands)
    flagged = flagged_bands(info)
    reader = BlockReader(info, bands, mask_path)
    tally = _BandTally(len(bands))
    # Windows hold the cube, its per-band validity and two working copies.
    windows = block_windows(info, reader.bytes_per_pixel * 3 + len(bands) + 16, budget)
    examined = np.array([band not in flagged for band in bands])
    detect_fill = options.undeclared_fill and int(examined.sum()) >= MIN_BANDS_FOR_UNDECLARED_FILL
    try:
        for _, cube_bhw, allowed_hw in iter_blocks(reader, windows, progress, allowed_only=True):
            valid_everywhere_hw = _tally_window(reader, cube_bhw, allowed_hw, examined, detect_fill, tally)
            if observe is not None:
                observe(cube_bhw, valid_everywhere_hw)
    finally:
        reader.close()
    validity = SceneValidity(bands, mask_note=reader.mask.report() if reader.mask is not None else None)
    validity.gdal_masked_pixels = info.width * info.height - tally.allowed
    validity.fill_pixels = sum(tally.fill_counts.values())
    by_frequency = sorted(tally.fill_counts.items(), key=lambda item: -item[1])
    validity.fill_values = tuple(value for value, _ in by_frequency[:_FILL_VALUES_LOGGED])
    for index, band in enumerate(bands):
        reason = flagged.get(band) or _scan_reason(index, reader, tally)
        if reason:
            validity.bad_bands[band] = reason
    validity.invalid_everywhere = tally.invalid_everywhere
    _leave_out_scattered_nodata_bands(reader, mask_path, examined, detect_fill, budget, tally, validity)
    if not validity.good_bands or (tally.reference == 0 and validity.fill_pixels):
        _refuse_all_bad(info, validity, tally)
    return validity


@dataclass
class _WindowJudgement:
    """One window's per-band validity, masked value ranges, undeclared fill and otherwise valid pixels."""

    valid_bhw: np.ndarray
    low_bhw: np.ndarray
    high_bhw: np.ndarray
    valid_count_hw: np.ndarray   # valid examined bands per pixel
    fill_hw: np.ndarray
    reference_hw: np.ndarray     # otherwise valid: valid in at least half of the live examined bands, not fill


def _judge_window(reader: BlockReader, cube_bhw: np.ndarray, allowed_hw: np.ndarray, examined: np.ndarray,
                  detect_fill: bool) -> _WindowJudgement:
    """The tests of one window, shared by the scan and the count of scattered nodata."""
    valid_bhw = np.empty(cube_bhw.shape, dtype=bool)
    for index, plane in enumerate(cube_bhw):
        valid_bhw[index] = reader.band_valid(index, plane) & allowed_hw
    if valid_bhw.all() and examined.all():
        low_bhw = high_bhw = cube_bhw  # the common clean window: no masked copies needed
    else:
        low_bhw = np.where(valid_bhw & examined[:, None, None], cube_bhw, np.inf)
        high_bhw = np.where(valid_bhw & examined[:, None, None], cube_bhw, -np.inf)
    valid_count_hw = valid_bhw[examined].sum(axis=0)
    fill_hw = np.zeros(allowed_hw.shape, dtype=bool)
    if detect_fill:
        fill_hw = (valid_count_hw >= 2) & (low_bhw.min(axis=0) == high_bhw.max(axis=0))
    # Otherwise valid: valid in at least half of the bands that have a valid value in this window (a band that
    # is NaN everywhere must not make every pixel look invalid).
    live_bands = int((valid_bhw[examined].any(axis=(1, 2))).sum())
    reference_hw = (valid_count_hw > 0) & (2 * valid_count_hw >= live_bands) & ~fill_hw
    return _WindowJudgement(valid_bhw, low_bhw, high_bhw, valid_count_hw, fill_hw, reference_hw)


def _tally_window(reader: BlockReader, cube_bhw: np.ndarray, allowed_hw: np.ndarray, examined: np.ndarray,
                  detect_fill: bool, tally: _BandTally) -> np.ndarray:
    """Add one window to the tally; returns its pixels valid in every band and not undeclared fill."""
    judged = _judge_window(reader, cube_bhw, allowed_hw, examined, detect_fill)
    if reader.may_be_non_finite:
        for index, plane in enumerate(cube_bhw):
            tally.non_finite[index] += int((~np.isfinite(plane) & allowed_hw).sum())
    tally.allowed += int(allowed_hw.sum())
    tally.valid += judged.valid_bhw.sum(axis=(1, 2))
    tally.invalid_everywhere += int((allowed_hw & (judged.valid_count_hw == 0)).sum())
    if detect_fill:
        values, counts = np.unique(judged.low_bhw.min(axis=0)[judged.fill_hw], return_counts=True)
        for value, count in zip(values.tolist(), counts.tolist()):
            tally.fill_counts[value] = tally.fill_counts.get(value, 0) + count
    reference_hw = judged.reference_hw
    tally.reference += int(reference_hw.sum())
    tally.valid_in_reference += judged.valid_bhw[:, reference_hw].sum(axis=1)
    if reference_hw.all():
        tally.low = np.minimum(tally.low, judged.low_bhw.min(axis=(1, 2)))
        tally.high = np.maximum(tally.high, judged.high_bhw.max(axis=(1, 2)))
    elif reference_hw.any():
        tally.low = np.minimum(tally.low, judged.low_bhw[:, reference_hw].min(axis=1))
        tally.high = np.maximum(tally.high, judged.high_bhw[:, reference_hw].max(axis=1))
    return (judged.valid_count_hw == judged.valid_bhw.shape[0]) & ~judged.fill_hw


def _leave_out_scattered_nodata_bands(reader: BlockReader, mask_path: Optional[str], examined: np.ndarray,
                                      detect_fill: bool, budget: int, tally: _BandTally,
                                      validity: SceneValidity) -> None:
    """Bands whose nodata value (or NaN) falls on scattered real pixels, each band on few (below the bad-band
    share) but together on more than BAD_BAND_INVALID_SHARE of the otherwise valid pixels (e.g. int16 water
    bands holding real zeros under nodata = 0): left out, worst first, until what the other bands leave out is
    within SCATTERED_NODATA_KEPT_SHARE; every good band that still leaves pixels out is counted in
    ``validity.band_losses``.

    The union of the bands' losses is counted exactly, in a second pass run only when their sum exceeds the
    share."""
    bands = reader.bands
    losses = tally.reference - tally.valid_in_reference
    candidates = sorted((index for index, band in enumerate(bands)
                         if examined[index] and band not in validity.bad_bands and losses[index] > 0),
                        key=lambda index: -losses[index])
    limit = BAD_BAND_INVALID_SHARE * tally.reference
    if sum(int(losses[index]) for index in candidates) > limit:
        lost_after = _pixels_lost_after_dropping(reader.info, bands, mask_path, examined, detect_fill, budget,
                                                 candidates)
        kept_limit = SCATTERED_NODATA_KEPT_SHARE * tally.reference
        dropped = next(count for count, lost in enumerate(lost_after) if lost <= kept_limit)
        for index in candidates[:dropped]:
            nodata = reader.nodata_value(index)
            what = "NaN or nodata" + (f" ({nodata:g})" if nodata is not None else "")
            validity.bad_bands[bands[index]] = (
                f"{what} scattered over bands that together would leave out "
                f"{100 * lost_after[0] / tally.reference:.0f}% of the pixels valid in the other bands")
        candidates = candidates[dropped:]
    validity.band_losses = {bands[index]: int(losses[index]) for index in candidates}


def _pixels_lost_after_dropping(info: RasterInfo, bands: Tuple[int, ...], mask_path: Optional[str],
                                examined: np.ndarray, detect_fill: bool, budget: int, order: List[int]
                                ) -> List[int]:
    """[k]: otherwise valid pixels invalid in a band of ``order[k:]`` (indices into ``bands``), for k = 0 ..
    len(order): a pixel is lost until every band of ``order`` it is invalid in has been dropped, so one
    histogram of its last such band in ``order`` gives every k at once."""
    reader = BlockReader(info, bands, mask_path)
    windows = block_windows(info, reader.bytes_per_pixel * 3 + len(bands) + 16, budget)
    last = np.zeros(len(order) + 1, dtype=np.int64)  # [rank + 1]: pixels whose last invalid band has that rank
    try:
        for _, cube_bhw, allowed_hw in iter_blocks(reader, windows, allowed_only=True):
            judged = _judge_window(reader, cube_bhw, allowed_hw, examined, detect_fill)
            invalid_rn = ~judged.valid_bhw[order][:, judged.reference_hw]
            ranks = np.where(invalid_rn.any(axis=0), len(order) - 1 - np.argmax(invalid_rn[::-1], axis=0), -1)
            last += np.bincount(ranks + 1, minlength=len(order) + 1)
    finally:
        reader.close()
    return [int(last[k + 1:].sum()) for k in range(len(order) + 1)]


def _scan_reason(index: int, reader: BlockReader, tally: _BandTally) -> Optional[str]:
    """Why the scan finds a band bad, or None."""
    nodata = reader.nodata_value(index)
    if tally.valid[index] == 0:
        if tally.allowed and tally.non_finite[index] == tally.allowed:
            return "no valid value: NaN everywhere"
        return "no valid value: nodata" + (f" ({nodata:g})" if nodata is not None else "") + " everywhere"
    if tally.reference >= 2 and tally.low[index] == tally.high[index]:
        return f"constant: {tally.low[index]:g} in every valid pixel"
    if tally.reference:
        invalid_share = 1 - tally.valid_in_reference[index] / tally.reference
        if invalid_share > BAD_BAND_INVALID_SHARE:
            what = "NaN or nodata" + (f" ({nodata:g})" if nodata is not None else "")
            return f"{what} on {100 * invalid_share:.0f}% of the pixels valid in the other bands"
    return None


def _refuse_all_bad(info: RasterInfo, validity: SceneValidity, tally: _BandTally) -> None:
    """No band is left: say why in one sentence."""
    if tally.reference == 0 and validity.fill_pixels:
        values = ", ".join(f"{value:g}" for value in validity.fill_values)
        raise InputError(f"Every valid pixel of {info.path} holds one value in all bands ({values}): the raster is "
                         f"constant or fill only, there is nothing to detect.")
    if not tally.valid.any():
        raise InputError(f"{info.path} has no valid pixels: every pixel is nodata, NaN or masked out.")
    reasons = sorted(set(validity.bad_bands.values()))
    raise InputError(f"{info.path} has no usable band: every band is bad ({'; '.join(reasons)}), so every pixel is "
                     f"nodata, NaN, constant or masked out.")


def fill_bad_model_bands(matrix: np.ndarray, validity: SceneValidity, info: RasterInfo
                         ) -> Tuple[np.ndarray, List[str]]:
    """A model band matrix (model bands x source bands) that reads no bad band, and sentences for the log.

    A model reads a fixed band set; where one of them is bad, its weight moves to the nearest good bands on each
    side, linearly interpolated by wavelength (by band number without wavelengths): the documented fill of the
    README. A bad band with good bands on one side only takes the nearest one's value."""
    bad = [band for band in validity.bad_bands if matrix[:, band - 1].any()]
    if not bad:
        return matrix, []
    good = np.array([band for band in range(1, info.band_count + 1)
                     if band not in validity.bad_bands], dtype=np.int64)
    if good.size == 0:
        raise InputError("Every band the model reads is bad, and no good band is left to fill them from.")
    wavelengths = info.wavelengths_nm
    position = (np.asarray(wavelengths, dtype=np.float64) if all(w is not None for w in wavelengths)
                else np.arange(1, info.band_count + 1, dtype=np.float64))
    filled = matrix.copy()
    notes = []
    for band in bad:
        weights = filled[:, band - 1].copy()
        filled[:, band - 1] = 0
        distance = position[good - 1] - position[band - 1]
        below = good[distance < 0][np.argmax(distance[distance < 0])] if (distance < 0).any() else None
        above = good[distance > 0][np.argmin(distance[distance > 0])] if (distance > 0).any() else None
        if below is not None and above is not None:
            share = (position[band - 1] - position[below - 1]) / (position[above - 1] - position[below - 1])
            filled[:, below - 1] += weights * (1 - share)
            filled[:, above - 1] += weights * share
            how = f"interpolated between bands {below} and {above}"
        else:
            nearest = below if below is not None else above
            filled[:, nearest - 1] += weights
            how = f"taken from band {nearest}"
        notes.append(f"The model reads band {band}, which is bad ({validity.bad_bands[band]}): its values are "
                     f"{how}.")
    return filled, notes


def model_band_reader(info: RasterInfo, matrix_for: Callable[[np.ndarray], np.ndarray],
                      mask_path: Optional[str] = None, options: ValidityOptions = ValidityOptions(),
                      budget: int = 64 * 2**20, progress: Optional[Progress] = None
                      ) -> Tuple[BlockReader, np.ndarray, np.ndarray]:
    """How a model reads a raster, the same in the plugin and in training: scan every band, report the bad ones,
    build the model's band matrix from the good ones (``matrix_for(usable)``, usable: one flag per band; see
    ``spectral.band_matrix``), fill the model bands that still read a bad one, and open a reader of the source
    bands left.

    Returns (reader, matrix over the bands read, 0-based indices of those bands)."""
    progress = progress or Progress()
    validity = assess_scene(info, range(1, info.band_count + 1), mask_path, options, budget, progress)
    validity.report(progress, os.path.basename(info.path))
    usable = np.array([band not in validity.bad_bands for band in range(1, info.band_count + 1)])
    matrix, notes = fill_bad_model_bands(matrix_for(usable), validity, info)
    for note in notes:
        progress.info(note)
    used = np.flatnonzero(np.any(matrix != 0, axis=0))
    reader = BlockReader(info, tuple(int(band) + 1 for band in used), mask_path, options.undeclared_fill)
    return reader, matrix[:, used], used
