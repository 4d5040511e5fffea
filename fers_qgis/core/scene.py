"""A raster as a FERS model sees it: which source bands it reads, and how they become normalised model bands.

``open_model_bands`` decides the first (the model's band rule over the good bands, after the bad-band scan);
pass 1 of every FERS job, ``ModelBandStatistics``, decides the second: the range of the model bands over the
valid pixels (the normalisation), their mean (the fill of invalid pixels) and the window around the valid pixels,
which is all the networks see, so fill around the data changes nothing they see.

Pass 1 also writes the model bands to a temporary raster (``model_band_writing``), which the feature pass reads
(``ModelScene``). The input is then decoded once, in windows that follow its own blocks: the feature pass reads
thin strips and overlapping tiles, which from a tiled or compressed input would decode each file block many times.
"""
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Tuple

import numpy as np

from .errors import InputError
from .onnx_runtime import FersModelSet
from .pipeline import WindowPlan
from .progress import Progress
from .raster import BlockReader, RasterInfo, Window, describe_raster
from .spectral import (MinMaxNormaliser, SceneRange, band_matrix, format_band_numbers, known_wavelengths,
                       to_model_bands)
from .tiling import grown
from .validity import ValidityOptions, model_band_reader
from .workspace import RasterFile

# (row0, row1, col0, col1): a rectangle of the raster, rows and columns [0, 1) from the top left.
Extent = Tuple[int, int, int, int]


@dataclass(frozen=True)
class ModelBands:
    """Which source bands a model reads from a raster and how they combine into model bands, decided once by the
    bad-band scan. Plain data: a Dask worker reopens the raster with it without scanning the bands again."""

    info: RasterInfo
    matrix: np.ndarray                                   # (B, source bands read)
    source_bands: Tuple[int, ...]                        # 1-based numbers of the source bands read
    band_names: Tuple[str, ...]                          # of the model bands
    wavelengths_nm: Tuple[Optional[float], ...]
    mask_path: Optional[str]
    undeclared_fill: bool
    source_bytes_per_pixel: int                          # what a window of the source bands costs

    @property
    def count(self) -> int:
        """B, the number of model bands."""
        return self.matrix.shape[0]

    def reader(self) -> BlockReader:
        """A reader of the source bands (and valid pixels); the caller closes it."""
        return BlockReader(self.info, self.source_bands, self.mask_path, self.undeclared_fill)

    def scan_plan(self, budget: int) -> WindowPlan:
        """The windows of pass 1 within the memory budget: the source window, its model bands (float64), their
        valid pixels' copy and the float32 block written."""
        return WindowPlan(self.info, self.source_bytes_per_pixel + self.count * (3 * 8 + 4), budget)


# The temporary raster of pass 1: the model bands before normalisation, NaN where a pixel is invalid.
MODEL_BANDS = "model bands"


@contextmanager
def model_band_writing(bands: ModelBands, progress: Progress) -> Iterator[Callable]:
    """Pass 1 of a FERS job: a window's model bands written into the sink MODEL_BANDS, and their statistics."""
    reader = bands.reader()

    def write(window: Window, sinks) -> "ModelBandStatistics":
        cube_bhw, valid_hw = reader.read(*window)
        model_bhw = to_model_bands(cube_bhw, bands.matrix)
        sinks[MODEL_BANDS].write(window[0], model_bhw, valid_hw, window[2])
        return ModelBandStatistics.of_block(model_bhw, valid_hw, window, bands.info.width)
    try:
        yield write
    finally:
        reader.close()


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


def open_model_bands(input_path: str, model: FersModelSet, mask_path: Optional[str], undeclared_fill: bool,
                     budget: int, progress: Progress) -> ModelBands:
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
    reader.close()
    names, wavelengths = _model_band_labels(info, matrix, used, metadata.band_mode)
    return ModelBands(info, matrix, reader.bands, names, wavelengths, mask_path, undeclared_fill,
                      reader.bytes_per_pixel)


def report_band_order(bands: ModelBands, model: FersModelSet, progress: Progress) -> None:
    """Say which of the raster's bands (and wavelengths) the model reads, and when they are not simply the first
    ones: by wavelength, or from the far end."""
    span = f"bands {format_band_numbers(bands.source_bands)}"
    wavelengths = [w for w in bands.wavelengths_nm if w is not None]
    if len(wavelengths) == len(bands.wavelengths_nm):
        span = f"{min(wavelengths):.0f}-{max(wavelengths):.0f} nm ({span})"
    progress.info(f"FERS reads {len(bands.source_bands)} of the raster's {bands.info.band_count} bands, {span}, "
                  f"with {model.bands} model bands ({model.metadata.band_mode} mode).")
    source_wavelengths = known_wavelengths(bands.info.wavelengths_nm)
    if model.metadata.wavelengths_nm and source_wavelengths is not None:
        progress.info(f"The model's {model.bands} bands ({min(model.metadata.wavelengths_nm):.0f}-"
                      f"{max(model.metadata.wavelengths_nm):.0f} nm, as trained) are taken from the raster by "
                      "wavelength.")
    elif source_wavelengths is not None and source_wavelengths[0] > source_wavelengths[-1]:
        progress.info("The raster lists its bands from long to short wavelengths; the model reads them from short "
                      "to long.")


@dataclass(frozen=True)
class Normalisation:
    """What pass 1 decides: the normalisation of the model bands, the normalised fill spectrum of invalid pixels
    (the scene mean), the valid-pixel count and the extent the networks run on."""

    normaliser: MinMaxNormaliser
    fill_b: np.ndarray
    valid_pixels: int
    extent: Extent


class ModelScene:
    """The model bands of pass 1 (``model_band_writing``), normalised: the networks' input for any window. Close
    it when done."""

    def __init__(self, model_bands: RasterFile, normalisation: Normalisation):
        self.normalisation = normalisation
        self.extent = normalisation.extent
        self.reader = model_bands.reader()

    def model_input(self, first_row: int, rows: int, first_column: int, columns: int
                    ) -> Tuple[np.ndarray, np.ndarray]:
        """(x_bhw float32, valid_hw) for a window: normalised model bands, invalid pixels holding the fill."""
        model_bhw, valid_hw = self.reader.read(first_row, rows, first_column, columns)
        x_bhw = self.normalisation.normaliser.apply(model_bhw).astype(np.float32, copy=False)
        x_bhw[:, ~valid_hw] = self.normalisation.fill_b[:, None]
        return x_bhw, valid_hw

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> "ModelScene":
        return self

    def __exit__(self, *_) -> None:
        self.close()


@dataclass
class ModelBandStatistics:
    """Pass-1 statistics of the model bands over valid pixels: their range (exact, and a sample for the robust
    one), sums and count. Blocks merge in any order (a tree of merges gives the statistics of one pass)."""

    value_range: SceneRange
    sums_b: np.ndarray
    count: int
    valid_extent: Optional[Extent] = None  # around every valid pixel

    @classmethod
    def empty(cls, bands: int) -> "ModelBandStatistics":
        return cls(SceneRange(), np.zeros(bands), 0)

    @classmethod
    def of_block(cls, model_bhw: np.ndarray, valid_hw: np.ndarray, window: Window, width: int
                 ) -> "ModelBandStatistics":
        """The statistics of the model bands of one window (first_row, rows, first_column, columns) of a raster
        ``width`` pixels wide."""
        statistics = cls.empty(model_bhw.shape[0])
        if valid_hw.any():
            values_bn = model_bhw[:, valid_hw]
            rows, columns = np.nonzero(valid_hw)
            statistics.value_range.add(values_bn, (window[0] + rows).astype(np.int64) * width + window[2] + columns)
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

    def normalisation(self, info: RasterInfo, model: FersModelSet, progress: Optional[Progress] = None
                      ) -> Normalisation:
        """The scene's normalisation (the model's method) and fill spectrum from the statistics of all its blocks;
        the log says what range it took."""
        if self.count == 0:
            raise InputError(f"{info.path} has no valid pixels: every pixel is nodata, NaN or masked out.")
        normaliser = self.value_range.normaliser(model.metadata.normalisation, model.metadata.normalisation_scale)
        extent = network_extent(self.valid_extent, info, model)
        progress = progress or Progress()
        progress.info(f"Model bands normalised over {self.count} valid pixels (range {normaliser.minimum:g} to "
                      f"{normaliser.maximum:g}).")
        scene_range = self.value_range
        if scene_range.minimum < normaliser.minimum or scene_range.maximum > normaliser.maximum:
            progress.info(f"Outlying values ({scene_range.minimum:g} to {scene_range.maximum:g} in the scene, e.g. "
                          "saturated or dead pixels) were clipped to that range so that they do not squeeze the "
                          "rest.")
        row0, row1, column0, column1 = extent
        if (row1 - row0, column1 - column0) != (info.height, info.width):
            progress.info(f"The valid pixels lie within rows {row0 + 1}-{row1} and columns {column0 + 1}-{column1}: "
                          "the networks see that window, as if the raster were cut to it, so the fill around it "
                          "changes nothing.")
        return Normalisation(normaliser, normaliser.apply(self.sums_b / self.count), self.count, extent)


def network_extent(valid_extent: Extent, info: RasterInfo, model: FersModelSet) -> Extent:
    """The window the networks run on: around every valid pixel (fill margins are cut off, so a scene padded
    with fill scores exactly like the scene), grown inside the raster to the smallest size the model accepts."""
    smallest = max(2 * model.halo + 1, 2)
    row0, row1 = grown(valid_extent[0], valid_extent[1], 0, info.height, smallest)
    column0, column1 = grown(valid_extent[2], valid_extent[3], 0, info.width, smallest)
    return row0, row1, column0, column1
