"""Block-wise raster reading with valid-pixel masks, and atomic GeoTIFF writing.

Rasters are read in windows of whole rows and all requested bands, so memory is set by a budget and not by the
raster size. Arrays read here are band-first: ``cube_bhw`` has shape (bands, rows, columns).
"""
import contextlib
import os
import re
import uuid
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from osgeo import gdal, gdal_array

from .errors import InputError

OUTPUT_NODATA = -9999.0
_GTIFF_OPTIONS = ["TILED=YES", "COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER"]


@contextlib.contextmanager
def gdal_errors_as_exceptions():
    """Turn GDAL errors into exceptions here only: QGIS and other plugins expect GDAL's global default untouched."""
    previous = gdal.GetUseExceptions()
    gdal.UseExceptions()
    try:
        yield
    finally:
        if not previous:
            gdal.DontUseExceptions()


@dataclass(frozen=True)
class RasterInfo:
    """What the core needs to know about a raster before reading its pixels."""

    path: str
    width: int
    height: int
    band_count: int
    numpy_dtypes: Tuple[np.dtype, ...]
    nodata: Tuple[Optional[float], ...]
    geotransform: Tuple[float, ...]
    projection_wkt: str
    band_names: Tuple[str, ...]
    wavelengths_nm: Tuple[Optional[float], ...]
    block_height: int
    block_width: int


def open_dataset(path: str) -> gdal.Dataset:
    """Open a raster read-only, or raise InputError saying why it cannot be read."""
    # GDAL paths such as /vsizip/... or NETCDF:"file.nc":var are not plain files; let GDAL judge those.
    is_gdal_path = path.startswith("/vsi") or (":" in path and not os.path.isabs(path))
    if not path or (not is_gdal_path and not os.path.exists(path)):
        raise InputError(f"Input raster not found: {path!r}.")
    with gdal_errors_as_exceptions():
        try:
            dataset = gdal.Open(path, gdal.GA_ReadOnly)
        except RuntimeError as error:
            raise InputError(f"Cannot read {path!r} as a raster: {error}") from error
    if dataset is not None and dataset.RasterCount == 0 and dataset.GetMetadata("SUBDATASETS"):
        raise InputError(f"{os.path.basename(path)} holds several variables (a NetCDF/HDF5 product), not one "
                         f"image: {import_command(path)}")
    if dataset is None or dataset.RasterCount == 0:
        raise InputError(f"Cannot read {path!r} as a raster: GDAL found no raster bands in it.")
    return dataset


# NetCDF dimension names that are spatial axes: GDAL reads a NetCDF cube's first dimension as its bands, so an
# EMIT-style reflectance(downtrack, crosstrack, bands) comes out with image lines as bands.
SPATIAL_DIMENSIONS = re.compile(
    r"^(down_?track|cross_?track|along_?track|across_?track|lines?|rows?|samples?|columns?|cols?|x|y|lat|lon|"
    r"latitude|longitude|northing|easting|ortho_[xy])$", re.IGNORECASE)
IMPORT_ALGORITHM_ID = "fers:importhyperspectralproduct"


def import_command(product_path: str) -> str:
    """How to import a sensor product first: the toolbox entry and the exact qgis_process command."""
    output = os.path.splitext(product_path)[0] + "_imported.tif"
    return (f"Processing Toolbox > FERS > Import hyperspectral product, or: qgis_process run {IMPORT_ALGORITHM_ID} "
            f"-- INPUT='{product_path}' OUTPUT='{output}'")


def _check_band_axis(dataset: gdal.Dataset, path: str) -> None:
    """Refuse a cube whose bands run along a spatial NetCDF dimension, before any pixel is scored as a band."""
    extra = (dataset.GetMetadataItem("NETCDF_DIM_EXTRA") or "").strip("{}")
    spatial = [name.strip() for name in extra.split(",") if SPATIAL_DIMENSIONS.match(name.strip())]
    if not spatial:
        return
    is_product = path.lower().endswith((".nc", ".nc4", ".h5", ".he5"))
    raise InputError(
        f"{os.path.basename(path)}: its bands run along the NetCDF dimension '{spatial[0]}', a spatial axis (GDAL "
        f"read the image's lines as bands), so its spectra would be wrong. Import the NetCDF product "
        f"{'' if is_product else '(not a GDAL export of it) '}instead: "
        f"{import_command(path if is_product else 'PRODUCT.nc')}")


def _wavelength_nm(band: gdal.Band) -> Optional[float]:
    """Band centre wavelength in nanometres from ENVI-style or GDAL 3.10 IMAGERY metadata, if present."""
    for domain in ("", "ENVI", "IMAGERY"):
        metadata = band.GetMetadata(domain) or {}
        value = metadata.get("wavelength") or metadata.get("CENTRAL_WAVELENGTH_UM")
        if value is None:
            continue
        try:
            wavelength = float(str(value).split()[0])
        except ValueError:
            continue
        units = (metadata.get("wavelength_units") or ("um" if "CENTRAL_WAVELENGTH_UM" in metadata else "")).lower()
        if units in ("micrometers", "micrometer", "microns", "um", "µm") or (not units and wavelength < 30):
            return wavelength * 1000.0
        return wavelength
    return None


def describe_raster(path: str) -> RasterInfo:
    """Read a raster's geometry, band types, nodata values, names and wavelengths."""
    dataset = open_dataset(path)
    _check_band_axis(dataset, path)
    bands = [dataset.GetRasterBand(index + 1) for index in range(dataset.RasterCount)]
    dtypes = []
    for band in bands:
        code = gdal.GetDataTypeName(band.DataType)
        if band.DataType in (gdal.GDT_CInt16, gdal.GDT_CInt32, gdal.GDT_CFloat32, gdal.GDT_CFloat64):
            raise InputError(f"{os.path.basename(path)} has complex-valued bands ({code}); expected real values.")
        dtypes.append(np.dtype(gdal.GetDataTypeName(band.DataType).lower().replace("byte", "uint8")))
    return RasterInfo(
        path=path,
        width=dataset.RasterXSize,
        height=dataset.RasterYSize,
        band_count=dataset.RasterCount,
        numpy_dtypes=tuple(dtypes),
        nodata=tuple(band.GetNoDataValue() for band in bands),
        geotransform=tuple(dataset.GetGeoTransform()),
        projection_wkt=dataset.GetProjection() or "",
        band_names=tuple(band.GetDescription() or f"Band {index + 1}" for index, band in enumerate(bands)),
        wavelengths_nm=tuple(_wavelength_nm(band) for band in bands),
        block_height=max(1, bands[0].GetBlockSize()[1]),
        block_width=max(1, bands[0].GetBlockSize()[0]),
    )


def select_bands(info: RasterInfo, bands: Optional[Sequence[int]]) -> Tuple[int, ...]:
    """Validate 1-based band numbers (None means all bands) and return them as a tuple."""
    if not bands:
        return tuple(range(1, info.band_count + 1))
    selected = tuple(int(band) for band in bands)
    bad = [band for band in selected if not 1 <= band <= info.band_count]
    if bad:
        raise InputError(f"Band numbers {bad} do not exist: the raster has bands 1 to {info.band_count}.")
    if len(set(selected)) != len(selected):
        raise InputError("The band selection lists a band more than once.")
    return selected


# A window: (first_row, row_count, first_column, column_count).
Window = Tuple[int, int, int, int]


def block_windows(info: RasterInfo, bytes_per_pixel: int, memory_budget_bytes: int, whole_rows: bool = False
                  ) -> List[Window]:
    """Windows in row-major order that cover the raster, fit the budget and follow the file's blocks.

    Whole-width strips of whole block rows when one block row fits the budget (or ``whole_rows`` is asked for);
    otherwise one block row at a time, cut into runs of whole blocks, so a wide raster costs no more memory than a
    narrow one and no file block is read (and decoded) twice. Budgets below one file block fall back to strips of
    the rows that fit."""
    height, width = info.height, info.width
    blocks_per_run = memory_budget_bytes // max(1, info.block_height * info.block_width * bytes_per_pixel)
    block_row_fits = width * bytes_per_pixel * info.block_height <= memory_budget_bytes
    if whole_rows or block_row_fits or blocks_per_run == 0 or info.block_height > height:
        rows = max(1, memory_budget_bytes // max(1, width * bytes_per_pixel))
        if rows >= info.block_height:
            rows -= rows % info.block_height
        rows = min(rows, height)
        return [(start, min(rows, height - start), 0, width) for start in range(0, height, rows)]
    rows, columns = info.block_height, blocks_per_run * info.block_width
    return [(row, min(rows, height - row), column, min(columns, width - column))
            for row in range(0, height, rows) for column in range(0, width, columns)]


def _nodata_as_float(nodata: Optional[float], dtype: np.dtype) -> Optional[float]:
    """The band's nodata value as stored in the band's own type, then as float64 (exact for every GDAL type we
    read); None when there is none or no pixel of that type can equal it (NaN is caught by the finiteness test)."""
    if nodata is None or np.isnan(nodata):
        return None
    if dtype.kind in "iu":
        limits = np.iinfo(dtype)
        if nodata != int(nodata) or not limits.min <= nodata <= limits.max:
            return None
    return float(dtype.type(nodata))


# Band types whose every value float32 holds exactly: windows of these are read as float32 (half the memory).
_FLOAT32_EXACT = {np.dtype(name) for name in ("uint8", "int8", "uint16", "int16", "float32")}
# Written blocks wait in GDAL's process-wide cache until it is full (5% of RAM by default); writers flush them
# to disk after this many bytes instead.
WRITE_CACHE_BYTES = 64 * 2**20
# Largest float64 pixel matrix that statistics and scoring build from a window at once.
CHUNK_BYTES = 32 * 2**20


def row_chunks(row_count: int, width: int, channels: int) -> Iterator[slice]:
    """Slices of a window's rows whose float64 pixel matrix stays within CHUNK_BYTES."""
    rows = max(1, CHUNK_BYTES // max(1, width * channels * 8))
    for start in range(0, row_count, rows):
        yield slice(start, min(start + rows, row_count))


class BlockReader:
    """Reads windows of selected bands with the valid-pixel mask of the same window, in bounded memory.

    Windows are float32 when every selected band's type fits it exactly (8- and 16-bit integers, float32), else
    float64 (``bytes_per_pixel`` says what a window costs). Each read fills one reusable buffer: the returned cube
    is valid until the next read, so a pass over a raster holds one window, not two.

    GDAL keeps decoded blocks in a process-wide cache (5% of RAM by default) until it is full. A window is read in
    pieces one file block wide and the reader drops its blocks after each piece, so the cache never holds more
    than one piece of this raster; QGIS's own cache setting is left alone.

    A pixel is valid when every selected band is finite and differs from that band's nodata value, and the
    optional mask raster (first band) is non-zero and not its own nodata there.
    """

    def __init__(self, info: RasterInfo, bands: Sequence[int], mask_path: Optional[str] = None):
        self.info = info
        self.bands = tuple(bands)
        exact = all(info.numpy_dtypes[band - 1] in _FLOAT32_EXACT for band in self.bands)
        self.dtype = np.dtype(np.float32 if exact else np.float64)
        self.bytes_per_pixel = len(self.bands) * self.dtype.itemsize
        self._may_be_non_finite = any(info.numpy_dtypes[band - 1].kind == "f" for band in self.bands)
        self._buffer = np.empty(0, dtype=self.dtype)
        self._dataset = open_dataset(info.path)
        self._nodata = [_nodata_as_float(info.nodata[band - 1], info.numpy_dtypes[band - 1]) for band in self.bands]
        self._mask_dataset = None
        self._mask_nodata = None
        if mask_path:
            mask_info = describe_raster(mask_path)
            if (mask_info.width, mask_info.height) != (info.width, info.height):
                raise InputError(
                    f"The mask raster is {mask_info.width} x {mask_info.height} pixels but the input is "
                    f"{info.width} x {info.height}: they must cover the same pixel grid.")
            self._mask_dataset = open_dataset(mask_path)
            self._mask_nodata = _nodata_as_float(mask_info.nodata[0], mask_info.numpy_dtypes[0])

    def read(self, first_row: int, row_count: int, first_column: int = 0, column_count: Optional[int] = None
             ) -> Tuple[np.ndarray, np.ndarray]:
        """Return (cube_bhw, valid_hw bool) for rows [first_row, first_row + row_count) and columns
        [first_column, first_column + column_count) (default: every column). cube_bhw is overwritten by the next
        read."""
        width = self.info.width - first_column if column_count is None else column_count
        size = len(self.bands) * row_count * width
        if self._buffer.size < size:
            self._buffer = None  # release the old buffer before allocating the larger one
            self._buffer = np.empty(size, dtype=self.dtype)
        cube_bhw = self._buffer[:size].reshape(len(self.bands), row_count, width)
        mask = None
        with gdal_errors_as_exceptions():
            try:
                for column, columns in self._column_pieces(first_column, width):
                    # One dataset-level read of all bands: pixel-interleaved files decode each block once.
                    self._dataset.ReadAsArray(column, first_row, columns, row_count, band_list=list(self.bands),
                                              buf_obj=cube_bhw[:, :, column - first_column:][:, :, :columns])
                    self._dataset.FlushCache()
                if self._mask_dataset is not None:
                    mask = self._mask_dataset.GetRasterBand(1).ReadAsArray(
                        first_column, first_row, width, row_count, buf_type=gdal.GDT_Float64)
                    self._mask_dataset.FlushCache()
            except RuntimeError as error:
                raise InputError(f"Reading rows {first_row}-{first_row + row_count - 1} of "
                                 f"{os.path.basename(self.info.path)} failed: {error}") from error
        valid_hw = np.ones((row_count, width), dtype=bool)
        for plane, nodata in zip(cube_bhw, self._nodata):
            if self._may_be_non_finite:
                valid_hw &= np.isfinite(plane)
            if nodata is not None:
                valid_hw &= plane != nodata
        if mask is not None:
            valid_hw &= np.isfinite(mask) & (mask != 0)
            if self._mask_nodata is not None:
                valid_hw &= mask != self._mask_nodata
        # Invalid pixels hold arbitrary values (NaN, fill values); zero them so arithmetic on blocks stays finite.
        if not valid_hw.all():
            cube_bhw[:, ~valid_hw] = 0.0
        return cube_bhw, valid_hw

    def _column_pieces(self, first_column: int, width: int) -> Iterator[Tuple[int, int]]:
        """(first column, column count) pieces of a window, cut at the file's block columns."""
        block_width = self.info.block_width
        column, stop = first_column, first_column + width
        while column < stop:
            piece_stop = min(stop, (column // block_width + 1) * block_width)
            yield column, piece_stop - column
            column = piece_stop

    def close(self) -> None:
        """Release the files now (a temporary file can then be deleted, also on Windows)."""
        self._dataset = None
        self._mask_dataset = None
        self._buffer = np.empty(0, dtype=self.dtype)


def check_output_path(output_path: str, input_paths: Sequence[str]) -> None:
    """Refuse outputs that would overwrite an input or land in a folder that does not exist or is read-only."""
    if not output_path:
        raise InputError("No output file was given.")
    target = os.path.realpath(output_path)
    for input_path in input_paths:
        if input_path and target == os.path.realpath(input_path):
            raise InputError(f"The output file {output_path!r} is also an input: choose another output file.")
    folder = os.path.dirname(target) or "."
    if not os.path.isdir(folder):
        raise InputError(f"The output folder {folder!r} does not exist.")
    if not os.access(folder, os.W_OK):
        raise InputError(f"The output folder {folder!r} is not writable.")


class FlushingWrites:
    """Counts bytes written to a dataset and flushes GDAL's cached blocks of it every WRITE_CACHE_BYTES."""

    def __init__(self):
        self._pending = 0

    def written(self, dataset: gdal.Dataset, nbytes: int) -> None:
        self._pending += nbytes
        if self._pending > WRITE_CACHE_BYTES:
            dataset.FlushCache()
            self._pending = 0


class RasterWriter:
    """GeoTIFF (Float32 unless told otherwise) on the input's pixel grid, written to a hidden file and renamed into place on success.

    Used as a context manager: if the block raises (an error or a cancel), the hidden file is deleted and any
    previous file at the output path is left untouched, so a failed run never leaves a partial output.
    """

    def __init__(self, output_path: str, like: RasterInfo, band_names: Sequence[str],
                 wavelengths_nm: Optional[Sequence[Optional[float]]] = None, nodata: float = OUTPUT_NODATA,
                 data_type: int = gdal.GDT_Float32):
        self.output_path = output_path
        self._data_type = data_type
        self._numpy_type = gdal_array.GDALTypeCodeToNumericTypeCode(data_type)
        self._like = like
        self._band_names = list(band_names)
        self._wavelengths = list(wavelengths_nm) if wavelengths_nm else [None] * len(self._band_names)
        self._nodata = nodata
        folder, name = os.path.split(os.path.abspath(output_path))
        self._partial_path = os.path.join(folder, f".{name}.{uuid.uuid4().hex[:8]}.partial.tif")
        self._dataset = None
        self._flushing = FlushingWrites()

    def __enter__(self) -> "RasterWriter":
        driver = gdal.GetDriverByName("GTiff")
        with gdal_errors_as_exceptions():
            try:
                self._dataset = driver.Create(self._partial_path, self._like.width, self._like.height,
                                              len(self._band_names), self._data_type, _GTIFF_OPTIONS + [
                                                  # floating-point or horizontal differencing before deflate
                                                  "PREDICTOR=3" if np.dtype(self._numpy_type).kind == "f"
                                                  else "PREDICTOR=2"])
            except RuntimeError as error:
                raise InputError(f"Cannot create the output file {self.output_path!r}: {error}") from error
        self._dataset.SetGeoTransform(self._like.geotransform)
        if self._like.projection_wkt:
            self._dataset.SetProjection(self._like.projection_wkt)
        for index, (name, wavelength) in enumerate(zip(self._band_names, self._wavelengths)):
            band = self._dataset.GetRasterBand(index + 1)
            band.SetNoDataValue(self._nodata)
            band.SetDescription(name)
            if wavelength is not None:
                band.SetMetadata({"wavelength": f"{wavelength:g}", "wavelength_units": "nanometers"})
        return self

    def set_metadata(self, items: Dict[str, str], domain: str = "", band: Optional[int] = None) -> None:
        """Add metadata items to the output (or to its 1-based ``band``), e.g. ENVI-domain spectral lists."""
        target = self._dataset if band is None else self._dataset.GetRasterBand(band)
        target.SetMetadata({**(target.GetMetadata(domain) or {}), **items}, domain)

    def write(self, first_row: int, values_bhw: np.ndarray, valid_hw: np.ndarray, first_column: int = 0) -> None:
        """Write a (bands, rows, columns) block at (first_row, first_column); invalid pixels become nodata."""
        block = np.where(valid_hw[None], values_bhw, self._nodata).astype(self._numpy_type)
        with gdal_errors_as_exceptions():
            # One dataset-level write of all bands: each (pixel-interleaved) file block is encoded once per call.
            self._dataset.WriteArray(block, first_column, first_row)
        self._flushing.written(self._dataset, block.nbytes)

    def __exit__(self, exc_type, exc, traceback) -> None:
        dataset, self._dataset = self._dataset, None
        try:
            if dataset is not None:
                dataset.FlushCache()
                dataset = None
            if exc_type is None:
                os.replace(self._partial_path, self.output_path)
        finally:
            if os.path.exists(self._partial_path):
                os.remove(self._partial_path)


def iter_blocks(reader: BlockReader, windows: Sequence[Window], progress=None
                ) -> Iterator[Tuple[Window, np.ndarray, np.ndarray]]:
    """Yield (window, cube_bhw, valid_hw) for each window, reporting progress and honouring cancel."""
    total = sum(rows * columns for _, rows, _, columns in windows)
    done = 0
    for window in windows:
        if progress is not None:
            progress.check_cancelled()
        first_row, row_count, first_column, column_count = window
        cube_bhw, valid_hw = reader.read(first_row, row_count, first_column, column_count)
        yield window, cube_bhw, valid_hw
        done += row_count * column_count
        if progress is not None:
            progress.set_fraction(done / total)
