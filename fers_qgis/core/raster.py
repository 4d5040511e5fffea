"""Rasters described (size, georeferencing, wavelengths) and read block-wise with valid-pixel masks.

Rasters are read in windows of whole rows and all requested bands, so memory is set by a budget and not by the
raster size. Arrays read here are band-first: ``cube_bhw`` has shape (bands, rows, columns).
"""
import contextlib
import os
import re
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
from osgeo import gdal, gdal_array, osr

from .errors import InputError
from .spectral import check_band_numbers, parse_band_selection


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
    # Georeferencing by ground control points (swaths before orthorectification) and rational polynomial
    # coefficients (metadata domain "RPC"), carried to every output raster.
    gcps: Tuple[gdal.GCP, ...] = ()
    gcp_projection_wkt: str = ""
    rpc_metadata: Tuple[Tuple[str, str], ...] = ()
    mask_flags: Tuple[int, ...] = ()
    alpha_bands: Tuple[int, ...] = ()        # 1-based; 0 in an alpha band marks fill

    @property
    def crs_wkt(self) -> str:
        """The CRS of the raster's map coordinates: its own, or that of its ground control points."""
        return self.projection_wkt or self.gcp_projection_wkt

    @property
    def has_geotransform(self) -> bool:
        """False for the unit grid GDAL reports when a raster has no geotransform."""
        return tuple(self.geotransform) != (0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


# Files that hold an ENVI raster's pixels beside its .hdr header, in the order ENVI tools name them.
_ENVI_DATA_EXTENSIONS = ("", ".img", ".dat", ".bsq", ".bil", ".bip", ".raw", ".bin")


def envi_data_file(header_path: str) -> Optional[str]:
    """The data file an ENVI header describes (NAME or NAME.img/.dat/...), when ``header_path`` is a .hdr file
    and that data file exists; else None."""
    stem, extension = os.path.splitext(header_path)
    if extension.lower() != ".hdr":
        return None
    for candidate in (stem + data_extension for data_extension in _ENVI_DATA_EXTENSIONS):
        if os.path.isfile(candidate):
            return candidate
    return None


def is_gdal_path(path: str) -> bool:
    """GDAL virtual file systems (/vsizip/..., /vsis3/...) and driver-prefixed names (NETCDF:"file.nc":var): not
    plain files, so only GDAL can judge them. A drive letter (C:) is no driver prefix."""
    return path.startswith("/vsi") or bool(re.match(r"^[A-Za-z0-9_]{2,}:", path))


def open_dataset(path: str) -> gdal.Dataset:
    """Open a raster read-only, or raise InputError saying why it cannot be read. An ENVI header (.hdr) opens
    the data file it describes: GDAL reads ENVI rasters through their data file."""
    if not path or (not is_gdal_path(path) and not os.path.exists(path)):
        raise InputError(f"Input raster not found: {path!r}.")
    path = envi_data_file(path) or path
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


def stated_nanometres_per_unit(units: str) -> Optional[float]:
    """1000 where the units text names micrometres, 1 where it names nanometres, else None (ENVI's "Unknown")."""
    units = units.strip().lower()
    if units.startswith(("micro", "um", "µm")):
        return 1000.0
    if units.startswith(("nano", "nm")):
        return 1.0
    return None


def nanometres_per_unit(wavelengths: Sequence[float], units: str) -> float:
    """1000 for wavelengths in micrometres, 1 for nanometres: by the units text where it names either, else by
    magnitude (a list whose largest value is below 30 is in micrometres)."""
    stated = stated_nanometres_per_unit(units)
    if stated is not None:
        return stated
    return 1000.0 if max(wavelengths, default=0) < 30 else 1.0


def _band_wavelength(band: gdal.Band) -> Tuple[Optional[float], str]:
    """(centre wavelength as written, its units text) from ENVI-style or GDAL 3.10 IMAGERY metadata."""
    for domain in ("", "ENVI", "IMAGERY"):
        metadata = band.GetMetadata(domain) or {}
        value = metadata.get("wavelength") or metadata.get("CENTRAL_WAVELENGTH_UM")
        if value is None:
            continue
        try:
            wavelength = float(str(value).split()[0])
        except ValueError:
            continue
        return wavelength, metadata.get("wavelength_units") or ("um" if "CENTRAL_WAVELENGTH_UM" in metadata else "")
    return None, ""


def _wavelengths_nm(bands: Sequence[gdal.Band]) -> Tuple[Optional[float], ...]:
    """Band centre wavelengths in nanometres, None where a band has none: a band's own units where it names them,
    else (no units, ENVI's "Unknown") the product importer's rule over all such bands: by their magnitude."""
    written = [_band_wavelength(band) for band in bands]
    unitless = [value for value, units in written if value is not None and stated_nanometres_per_unit(units) is None]
    return tuple(None if value is None else value * nanometres_per_unit(unitless, units) for value, units in written)


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
    rpc = dataset.GetMetadata("RPC") or {}
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
        wavelengths_nm=_wavelengths_nm(bands),
        block_height=max(1, bands[0].GetBlockSize()[1]),
        block_width=max(1, bands[0].GetBlockSize()[0]),
        gcps=tuple(dataset.GetGCPs() or ()),
        gcp_projection_wkt=dataset.GetGCPProjection() or "",
        rpc_metadata=tuple(sorted(rpc.items())),
        mask_flags=tuple(band.GetMaskFlags() for band in bands),
        alpha_bands=tuple(index + 1 for index, band in enumerate(bands)
                          if band.GetColorInterpretation() == gdal.GCI_AlphaBand),
    )


def select_bands(info: RasterInfo, bands: Union[None, str, Sequence[int]]) -> Tuple[int, ...]:
    """Validate 1-based band numbers (None means all bands), or read a typed selection such as "1-50" or
    "400-1000 nm" (``spectral.parse_band_selection``), and return them as a tuple."""
    if isinstance(bands, str) and bands.strip():
        return parse_band_selection(bands, info.band_count, info.wavelengths_nm)
    if not bands:
        return tuple(range(1, info.band_count + 1))
    selected = tuple(int(band) for band in bands)
    check_band_numbers(selected, info.band_count)
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
# Largest float64 pixel matrix that statistics and scoring build from a window at once.
CHUNK_BYTES = 32 * 2**20
# A pixel holding one value in every band is fill only when there are enough bands for that to be no accident.
MIN_BANDS_FOR_UNDECLARED_FILL = 3


def one_value_in_every_band(cube_bhw: np.ndarray) -> np.ndarray:
    """(rows, columns) bool: pixels whose bands all hold the same value (fill written without a declaration)."""
    return np.all(cube_bhw == cube_bhw[:1], axis=0)


def row_chunks(row_count: int, width: int, channels: int) -> Iterator[slice]:
    """Slices of a window's rows whose float64 pixel matrix stays within CHUNK_BYTES."""
    rows = max(1, CHUNK_BYTES // max(1, width * channels * 8))
    for start in range(0, row_count, rows):
        yield slice(start, min(start + rows, row_count))


def _is_masking(flags: int) -> bool:
    """True for a GDAL mask that marks fill beyond the band's nodata value: a per-dataset mask (internal TIFF
    mask, .msk sidecar) or an alpha band. Nodata masks are left to the nodata test, which also knows NaN."""
    return not flags & gdal.GMF_ALL_VALID and not flags & gdal.GMF_NODATA


def _north_up(geotransform: Sequence[float]) -> bool:
    return geotransform[2] == 0 and geotransform[4] == 0 and geotransform[1] > 0 and geotransform[5] < 0


def _same_crs(first_wkt: str, second_wkt: str) -> bool:
    if not first_wkt or not second_wkt:
        return first_wkt == second_wkt
    first, second = osr.SpatialReference(), osr.SpatialReference()
    first.ImportFromWkt(first_wkt)
    second.ImportFromWkt(second_wkt)
    return bool(first.IsSame(second))


def _same_grid(mask: RasterInfo, info: RasterInfo) -> bool:
    """Same size, geotransform (to a hundredth of a pixel) and CRS."""
    if (mask.width, mask.height) != (info.width, info.height):
        return False
    pixel = max(abs(info.geotransform[1]), abs(info.geotransform[5]), 1e-12)
    return np.allclose(mask.geotransform, info.geotransform, rtol=0, atol=pixel / 100) and \
        _same_crs(mask.projection_wkt, info.projection_wkt)


def mask_on_input_grid(mask_path: str, info: RasterInfo) -> Tuple[gdal.Dataset, Optional[int], Optional[str]]:
    """The mask raster as a dataset on the input's pixel grid, the band of it that is 0 outside the mask's extent
    (None when it covers the whole grid), and a sentence for the log when it had to be resampled; InputError when
    it cannot be placed.

    Same grid, or same size without georeferencing on one side (arrays saved without a grid): pixel for pixel.
    Another grid: nearest-neighbour resampling through a virtual (VRT) warp, so nothing is held in memory, with an
    alpha band marking the mask's extent (its own nodata is kept as a value: it still masks out)."""
    mask = describe_raster(mask_path)
    georeferenced = [item.has_geotransform and bool(item.projection_wkt) for item in (mask, info)]
    if _same_grid(mask, info) or ((mask.width, mask.height) == (info.width, info.height) and not all(georeferenced)):
        return open_dataset(mask_path), None, None
    if not all(georeferenced):
        raise InputError(
            f"The mask raster is {mask.width} x {mask.height} pixels but the input is {info.width} x {info.height}, "
            f"and {'the mask' if not georeferenced[0] else 'the input'} has no map georeferencing to place one on "
            f"the other: give a mask on the input's pixel grid.")
    if not _north_up(info.geotransform):
        raise InputError("The mask raster is on another grid than the input, whose grid is rotated: resample the "
                         "mask onto the input's grid first (Raster > Projections > Warp).")
    x0, dx, _, y0, _, dy = info.geotransform
    bounds = (x0, y0 + info.height * dy, x0 + info.width * dx, y0)
    if not _overlaps(mask, info.projection_wkt, bounds):
        raise InputError("The mask raster does not overlap the input raster (compared in the input's CRS): "
                         "check that it belongs to this scene.")
    with gdal_errors_as_exceptions():
        try:
            warped = gdal.Warp("", open_dataset(mask_path), format="VRT", outputBounds=bounds, width=info.width,
                               height=info.height, dstSRS=info.projection_wkt, resampleAlg="near",
                               srcNodata="None", dstAlpha=True)
        except RuntimeError as error:
            raise InputError(f"The mask raster cannot be resampled onto the input's grid: {error}") from error
    return warped, warped.RasterCount, (
        f"The mask raster lies on another grid ({mask.width} x {mask.height} pixels"
        f"{'' if _same_crs(mask.projection_wkt, info.projection_wkt) else ', another CRS'}): resampled onto the "
        f"input's grid (nearest neighbour).")


class MaskRaster:
    """The optional mask raster on the input's grid: which pixels of a window it allows, and counts of what it
    removed for the log.

    Inside its extent a pixel is allowed where the mask is non-zero, finite and not its own nodata; outside its
    extent (a mask covering part of the scene) the mask says nothing, so the pixel is not masked, and counted."""

    def __init__(self, mask_path: str, info: RasterInfo):
        self._dataset, self._extent_band, self._placement = mask_on_input_grid(mask_path, info)
        band = self._dataset.GetRasterBand(1)
        self._nodata = _nodata_as_float(describe_raster(mask_path).nodata[0],
                                        np.dtype(gdal_array.GDALTypeCodeToNumericTypeCode(band.DataType)))
        self.zero_pixels = self.nodata_pixels = self.outside_pixels = 0

    def allowed(self, first_row: int, row_count: int, first_column: int, width: int) -> np.ndarray:
        """(rows, columns) bool of a window (called with GDAL errors as exceptions)."""
        values = self._dataset.GetRasterBand(1).ReadAsArray(first_column, first_row, width, row_count,
                                                            buf_type=gdal.GDT_Float64)
        inside_hw = np.ones(values.shape, dtype=bool)
        if self._extent_band is not None:
            inside_hw = self._dataset.GetRasterBand(self._extent_band).ReadAsArray(
                first_column, first_row, width, row_count) != 0
        self._dataset.FlushCache()
        zero_hw = inside_hw & ((values == 0) | ~np.isfinite(values))
        nodata_hw = inside_hw & ~zero_hw & (values == self._nodata) if self._nodata is not None else \
            np.zeros(values.shape, dtype=bool)
        self.zero_pixels += int(zero_hw.sum())
        self.nodata_pixels += int(nodata_hw.sum())
        self.outside_pixels += int((~inside_hw).sum())
        return ~(zero_hw | nodata_hw)

    def report(self) -> str:
        """What the mask did, for the log, after one pass over the raster."""
        parts = [self._placement] if self._placement else []
        removed = f"The mask raster masked out {self.zero_pixels} pixels (its zeros)"
        if self._nodata is not None:
            removed += f" and {self.nodata_pixels} pixels (its nodata value {self._nodata:g})"
        parts.append(removed + ".")
        if self._extent_band is not None:
            parts.append(f"{self.outside_pixels} input pixels lie outside the mask raster's extent: they are not "
                         f"masked (the mask says nothing about them).")
        return " ".join(parts)

    def close(self) -> None:
        self._dataset = None


def _overlaps(mask: RasterInfo, target_wkt: str, bounds: Tuple[float, float, float, float]) -> bool:
    """Whether the mask's footprint, transformed to the target CRS, meets ``bounds`` (xmin, ymin, xmax, ymax)."""
    x0, dx, rx, y0, ry, dy = mask.geotransform
    corners = [(x0 + c * dx + r * rx, y0 + c * ry + r * dy) for r in (0, mask.height) for c in (0, mask.width)]
    source, target = osr.SpatialReference(), osr.SpatialReference()
    source.ImportFromWkt(mask.projection_wkt)
    target.ImportFromWkt(target_wkt)
    for reference in (source, target):
        reference.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    try:
        points = osr.CoordinateTransformation(source, target).TransformPoints(corners)
    except RuntimeError:
        return False
    xs, ys = [point[0] for point in points], [point[1] for point in points]
    if not all(np.isfinite(xs + ys)):
        return False
    return min(xs) < bounds[2] and max(xs) > bounds[0] and min(ys) < bounds[3] and max(ys) > bounds[1]


class WindowBuffer:
    """One reusable buffer for a reader's windows: a window views it, a larger window replaces it (the old buffer
    released first), so a pass over a raster holds one window, not two."""

    def __init__(self, dtype: np.dtype):
        self.dtype = np.dtype(dtype)
        self._array = np.empty(0, dtype=self.dtype)

    def view(self, shape: Tuple[int, ...]) -> np.ndarray:
        """An array of ``shape`` in the buffer, overwritten by the next view."""
        size = int(np.prod(shape))
        if self._array.size < size:
            self._array = None
            self._array = np.empty(size, dtype=self.dtype)
        return self._array[:size].reshape(shape)

    def release(self) -> None:
        self._array = np.empty(0, dtype=self.dtype)


class BlockReader:
    """Reads windows of selected bands with the valid-pixel mask of the same window, in bounded memory.

    Windows are float32 when every selected band's type fits it exactly (8- and 16-bit integers, float32), else
    float64 (``bytes_per_pixel`` says what a window costs). Each read fills one reusable buffer: the returned cube
    is valid until the next read, so a pass over a raster holds one window, not two.

    GDAL keeps decoded blocks in a process-wide cache (5% of RAM by default) until it is full. A window is read in
    pieces one file block wide and the reader drops its blocks after each piece, so the cache never holds more
    than one piece of this raster; QGIS's own cache setting is left alone. That costs whole file blocks for every
    read: windows thinner than the file's tiles decode each tile again.

    A pixel is valid when GDAL's mask of the raster allows it (internal or .msk mask, alpha band), every selected
    band is finite and differs from that band's nodata value, and the optional mask raster (first band, resampled
    onto the input's grid when it lies on another) is non-zero and not its own nodata there. With
    ``undeclared_fill`` (the detection jobs; see ``validity``), a pixel holding one value in every selected band
    (at least 3 bands) is fill too.
    """

    def __init__(self, info: RasterInfo, bands: Sequence[int], mask_path: Optional[str] = None,
                 undeclared_fill: bool = False):
        self.info = info
        self.bands = tuple(bands)
        exact = all(info.numpy_dtypes[band - 1] in _FLOAT32_EXACT for band in self.bands)
        self.dtype = np.dtype(np.float32 if exact else np.float64)
        self.bytes_per_pixel = len(self.bands) * self.dtype.itemsize
        self.may_be_non_finite = any(info.numpy_dtypes[band - 1].kind == "f" for band in self.bands)
        self._buffer = WindowBuffer(self.dtype)
        self._dataset = open_dataset(info.path)
        self._nodata = [_nodata_as_float(info.nodata[band - 1], info.numpy_dtypes[band - 1]) for band in self.bands]
        self.undeclared_fill = undeclared_fill and len(self.bands) >= MIN_BANDS_FOR_UNDECLARED_FILL
        # GDAL masks: one read for a per-dataset mask (all bands share it), else one per band that has its own.
        flags = info.mask_flags or (gdal.GMF_ALL_VALID,) * info.band_count
        masking = [band for band in self.bands if _is_masking(flags[band - 1])]
        per_dataset = [band for band in masking if flags[band - 1] & gdal.GMF_PER_DATASET]
        self._gdal_mask_bands = tuple(per_dataset[:1] + [band for band in masking if band not in per_dataset])
        # GDAL turns an alpha band into a mask for gray+alpha and RGBA rasters only; hyperspectral cubes with an
        # alpha band get the same treatment here.
        alpha_as_mask = any(flags[band - 1] & gdal.GMF_ALPHA for band in self.bands)
        self._alpha_bands = () if alpha_as_mask else info.alpha_bands
        self.mask = MaskRaster(mask_path, info) if mask_path else None

    def read_allowed(self, first_row: int, row_count: int, first_column: int = 0,
                     column_count: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
        """(cube_bhw, allowed_hw): the window's values and the pixels that GDAL's masks and the mask raster
        allow, before any test on the values themselves. cube_bhw is overwritten by the next read."""
        width = self.info.width - first_column if column_count is None else column_count
        cube_bhw = self._buffer.view((len(self.bands), row_count, width))
        allowed_hw = np.ones((row_count, width), dtype=bool)
        with gdal_errors_as_exceptions():
            try:
                for column, columns in self._column_pieces(first_column, width):
                    # One dataset-level read of all bands: pixel-interleaved files decode each block once.
                    self._dataset.ReadAsArray(column, first_row, columns, row_count, band_list=list(self.bands),
                                              buf_obj=cube_bhw[:, :, column - first_column:][:, :, :columns])
                    self._dataset.FlushCache()
                for band in self._gdal_mask_bands:
                    allowed_hw &= self._dataset.GetRasterBand(band).GetMaskBand().ReadAsArray(
                        first_column, first_row, width, row_count) != 0
                for band in self._alpha_bands:
                    allowed_hw &= self._dataset.GetRasterBand(band).ReadAsArray(
                        first_column, first_row, width, row_count) != 0
                if self.mask is not None:
                    allowed_hw &= self.mask.allowed(first_row, row_count, first_column, width)
            except RuntimeError as error:
                raise InputError(f"Reading rows {first_row}-{first_row + row_count - 1} of "
                                 f"{os.path.basename(self.info.path)} failed: {error}") from error
        return cube_bhw, allowed_hw

    def nodata_value(self, index: int) -> Optional[float]:
        """The nodata value of the ``index``-th selected band, None when it has none that its type can hold."""
        return self._nodata[index]

    def band_valid(self, index: int, plane_hw: np.ndarray) -> np.ndarray:
        """Pixels of the ``index``-th selected band that are finite and not its nodata value."""
        valid_hw = np.isfinite(plane_hw) if self.may_be_non_finite else np.ones(plane_hw.shape, dtype=bool)
        if self._nodata[index] is not None:
            valid_hw &= plane_hw != self._nodata[index]
        return valid_hw

    def read(self, first_row: int, row_count: int, first_column: int = 0, column_count: Optional[int] = None
             ) -> Tuple[np.ndarray, np.ndarray]:
        """Return (cube_bhw, valid_hw bool) for rows [first_row, first_row + row_count) and columns
        [first_column, first_column + column_count) (default: every column). cube_bhw is overwritten by the next
        read."""
        cube_bhw, valid_hw = self.read_allowed(first_row, row_count, first_column, column_count)
        for index, plane in enumerate(cube_bhw):
            valid_hw &= self.band_valid(index, plane)
        if self.undeclared_fill:
            valid_hw &= ~one_value_in_every_band(cube_bhw)
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
        if self.mask is not None:
            self.mask.close()
        self._buffer.release()


def iter_blocks(reader: BlockReader, windows: Sequence[Window], progress=None, allowed_only: bool = False
                ) -> Iterator[Tuple[Window, np.ndarray, np.ndarray]]:
    """Yield (window, cube_bhw, valid_hw) for each window, reporting progress and honouring cancel. With
    ``allowed_only`` the mask is ``read_allowed``'s: the pixels the masks allow, before any test on the values."""
    read = reader.read_allowed if allowed_only else reader.read
    total = sum(rows * columns for _, rows, _, columns in windows)
    done = 0
    for window in windows:
        if progress is not None:
            progress.check_cancelled()
        first_row, row_count, first_column, column_count = window
        cube_bhw, valid_hw = read(first_row, row_count, first_column, column_count)
        yield window, cube_bhw, valid_hw
        done += row_count * column_count
        if progress is not None:
            progress.set_fraction(done / total)
