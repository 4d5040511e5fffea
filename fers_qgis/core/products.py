"""Import hyperspectral sensor products into a GeoTIFF that every FERS algorithm (and EnMAP-Box) reads.

Products as delivered are not plain image cubes: EMIT L2A is a NetCDF swath (downtrack, crosstrack, bands) with a
geometry lookup table (GLT) to its map grid, PRISMA L2D an HDF-EOS5 file with VNIR and SWIR cubes stored
(rows, bands, columns) in descending wavelength order and scaled to 16 bits, EnMAP L2A a GeoTIFF whose wavelengths,
gains and band statistics live in METADATA.XML, AVIRIS-NG / AVIRIS-3 ENVI files carry wavelengths (nm or um) and
bad-band lists in their header. GDAL 3.6 (Debian 12) neither orthorectifies EMIT through its GLT (GDAL 3.8) nor
georeferences HDF-EOS5 (GDAL 3.7), so NetCDF and HDF5 are read here through GDAL's multidimensional API (GDAL >=
3.1, no extra Python package) and the GLT is applied block by block in numpy.

The output is a tiled Float32 GeoTIFF in ascending wavelength order, nodata -9999, with each band's wavelength (nm),
FWHM and bad-band flag both per band and in the ENVI metadata domain (``wavelength``, ``fwhm``, ``bbl`` lists), the
layout EnMAP-Box and ``raster.describe_raster`` read.
"""
import os
import re
import time
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple
from xml.etree import ElementTree  # nosec B405: reads a local product file the user chose, not remote input

import numpy as np
from osgeo import gdal, osr

from .errors import InputError
from .progress import Progress
from .raster import (MASK_NODATA, OUTPUT_NODATA, RasterInfo, RasterWriter, check_output_path, nanometres_per_unit,
                     gdal_errors_as_exceptions, stated_nanometres_per_unit)

EMIT_L2A = "emit-l2a"
EMIT_L2A_MASK = "emit-l2a-mask"
ENMAP_L2A = "enmap-l2a"
PRISMA_L2D = "prisma-l2d"
ENVI_REFLECTANCE = "envi"
NETCDF_CUBE = "netcdf-cube"

PRODUCT_NAMES = {
    EMIT_L2A: "EMIT L2A reflectance (NetCDF with geometry lookup table)",
    EMIT_L2A_MASK: "EMIT L2A mask (NetCDF with geometry lookup table), as a valid-pixel mask",
    ENMAP_L2A: "EnMAP L2A (GeoTIFF with METADATA.XML)",
    PRISMA_L2D: "PRISMA L2D (HDF-EOS5)",
    ENVI_REFLECTANCE: "AVIRIS-NG / AVIRIS-3 ENVI reflectance",
    NETCDF_CUBE: "NetCDF / HDF5 reflectance cube",
}

# Where an EMIT swath's pixels go: its map grid (orthorectified through the GLT), or the swath as recorded.
MAP_GRID, SENSOR_GEOMETRY = "map", "sensor"
GEOMETRIES = (MAP_GRID, SENSOR_GEOMETRY)
# How a product given straight to a detector is imported: an EMIT swath as recorded, which scores exactly like the
# scene, where its map grid adds the rotation and the GLT's repeated pixels (docs/RESULTS.md).
SCENE_GEOMETRY = SENSOR_GEOMETRY
# Ground control points of a sensor-geometry swath: about this many along each axis (plus the last line/sample).
GCPS_PER_AXIS = 12

# Fill value of EMIT and AVIRIS-NG / AVIRIS-3 products, declared or not.
PRODUCT_FILL = -9999.0
# Bytes of pixels a block of the import holds at once (output block, and source lines read for it).
BLOCK_BYTES = 64 * 2**20

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_NETCDF_SIGNATURES = (b"CDF\x01", b"CDF\x02", b"CDF\x05")
_SUBDATASET = re.compile(r'^(?:NETCDF|HDF5):"?(?P<file>.+?)"?:(?P<variable>[^:]+)$', re.IGNORECASE)
# Dimension names that say "spectral axis", "x axis" (image columns) and "y axis" (image rows).
_BAND_DIMENSIONS = re.compile(r"^(bands?|wavelengths?|spectral.*|channels?|wl|lambda|nbands?)$", re.IGNORECASE)
_X_DIMENSIONS = re.compile(r"^(x|lon|longitude|easting|columns?|cols?|samples?|cross_?track|across_?track|ortho_x)$",
                           re.IGNORECASE)
_Y_DIMENSIONS = re.compile(r"^(y|lat|latitude|northing|rows?|lines?|down_?track|along_?track|ortho_y)$",
                           re.IGNORECASE)
# CF standard names of a coordinate variable that say which axis it is.
_STANDARD_NAME_AXES = {"radiation_wavelength": "band", "sensor_band_identifier": "band",
                       "radiation_frequency": "band", "projection_x_coordinate": "x", "longitude": "x",
                       "grid_longitude": "x", "projection_y_coordinate": "y", "latitude": "y",
                       "grid_latitude": "y"}
BAND, X, Y = "band", "x", "y"
# Names of dimensions along map coordinates (not image lines or samples, whose coordinates would be indices).
_MAP_DIMENSIONS = re.compile(r"^(x|y|lon|lat|longitude|latitude|easting|northing)$", re.IGNORECASE)
_PRISMA_CUBES = "/HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields/{}_Cube"


@dataclass(frozen=True)
class ImportSummary:
    """What an import did, for the log."""

    kind: str
    output_path: str
    width: int
    height: int
    band_count: int
    bad_bands: Tuple[int, ...]  # 1-based, flagged bbl = 0 in the output
    valid_pixels: int
    seconds: float
    notes: Tuple[str, ...] = ()

    @property
    def product_name(self) -> str:
        return PRODUCT_NAMES[self.kind]


@dataclass
class ProductHeader:
    """The output raster as known before any pixel is read: grid, bands in output order, decisions to log."""

    kind: str
    width: int
    height: int
    wavelengths_nm: List[float]
    fwhm_nm: List[Optional[float]]
    good_bands: List[bool]
    geotransform: Tuple[float, ...] = (0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    projection_wkt: str = ""
    notes: List[str] = field(default_factory=list)
    gcps: Tuple[gdal.GCP, ...] = ()       # georeferencing of a swath in sensor geometry (no geotransform)
    gcp_projection_wkt: str = ""


def container_file(path: str) -> Optional[str]:
    """The NetCDF/HDF5 file behind ``path`` (a file, or a GDAL subdataset name such as NETCDF:"f.nc":var), or None
    when ``path`` is not one: these are the inputs GDAL's raster API misreads and that need an import."""
    match = _SUBDATASET.match(path or "")
    file_path = match.group("file") if match else path
    if not file_path or not os.path.isfile(file_path):
        return None
    with open(file_path, "rb") as stream:
        signature = stream.read(8)
    if signature.startswith(_HDF5_SIGNATURE) or signature[:4] in _NETCDF_SIGNATURES:
        return file_path
    return None


def product_kind(path: str) -> Optional[str]:
    """Which product ``path`` is (a key of PRODUCT_NAMES), or None when it is none this module imports."""
    try:
        return describe_product(path).kind
    except InputError:
        return None


def describe_product(path: str, geometry: str = MAP_GRID) -> "ProductHeader":
    """The raster an import of ``path`` will write (grid, bands, decisions), from metadata alone; InputError when
    ``path`` is no product this module imports, saying why."""
    product = _open_product(path, geometry)
    product.close()
    return product.header


def _open_scene_product(path: str) -> "_Product":
    """A product given to a detector as its scene, opened in SCENE_GEOMETRY: a mask file is refused, saying where
    it goes instead."""
    product = _open_product(path, SCENE_GEOMETRY)
    if product.kind == EMIT_L2A_MASK:
        product.close()
        raise InputError(f"{os.path.basename(path)} is EMIT's mask file, not a scene: import it (Import "
                         f"hyperspectral product) and give the result as the valid-pixel mask of its reflectance.")
    return product


def describe_scene_product(path: str) -> "ProductHeader":
    """describe_product for a product given to a detector as its scene (what ``import_scene`` will write)."""
    product = _open_scene_product(path)
    product.close()
    return product.header


def import_scene(input_path: str, output_path: str, progress: Optional[Progress] = None) -> ImportSummary:
    """Import a product given to a detector as its scene (see describe_scene_product)."""
    return _import(lambda: _open_scene_product(input_path), input_path, output_path, progress)


def import_product(input_path: str, output_path: str, progress: Optional[Progress] = None,
                   geometry: str = MAP_GRID) -> ImportSummary:
    """Write ``input_path`` (any product of PRODUCT_NAMES) as a tiled GeoTIFF at ``output_path``.

    ``geometry`` SENSOR_GEOMETRY writes an EMIT swath as recorded (georeferenced by GCPs) instead of on its map
    grid; other products are written as delivered either way. Raises InputError before creating any file when the
    product cannot be read; a failed or cancelled import leaves no file behind."""
    return _import(lambda: _open_product(input_path, geometry), input_path, output_path, progress)


def _import(open_product, input_path: str, output_path: str, progress: Optional[Progress]) -> ImportSummary:
    """Open the product (``open_product()``), write it, close it, and summarise what was written."""
    started = time.monotonic()
    progress = progress or Progress()
    product = open_product()
    try:
        check_output_path(output_path, [input_path, product.source_path])
        write = _write_valid_pixel_mask if isinstance(product, EmitL2AMask) else _write_product
        valid_pixels = write(product, output_path, progress)
    finally:
        product.close()
    header = product.header
    bad_bands = tuple(index for index, good in enumerate(header.good_bands, 1) if not good)
    return ImportSummary(kind=product.kind, output_path=output_path, width=header.width, height=header.height,
                         band_count=len(header.wavelengths_nm) or 1, bad_bands=bad_bands, valid_pixels=valid_pixels,
                         seconds=time.monotonic() - started, notes=tuple(header.notes))


def _output_grid(product: "_Product") -> RasterInfo:
    """The output raster's grid and georeferencing, as the writer takes them."""
    header = product.header
    bands = max(1, len(header.wavelengths_nm))
    return RasterInfo(path=product.source_path, width=header.width, height=header.height, band_count=bands,
                      numpy_dtypes=(np.dtype(np.float32),) * bands, nodata=(OUTPUT_NODATA,) * bands,
                      geotransform=header.geotransform, projection_wkt=header.projection_wkt, band_names=(),
                      wavelengths_nm=tuple(header.wavelengths_nm) or (None,), block_height=1,
                      block_width=header.width, gcps=header.gcps, gcp_projection_wkt=header.gcp_projection_wkt)


def _product_rows(product: "_Product", bands: int, progress: Progress
                  ) -> Iterator[Tuple[int, np.ndarray, np.ndarray]]:
    """(first_row, cube_bhw, valid_hw) of the output grid in blocks of rows holding ``bands`` float32 values a
    pixel within BLOCK_BYTES, after the header's notes go to the log; cancel and progress between blocks."""
    header = product.header
    for note in header.notes:
        progress.info(note)
    rows_per_block = max(1, min(header.height, BLOCK_BYTES // max(1, header.width * bands * 4)))
    name = os.path.basename(product.source_path)
    for first_row in range(0, header.height, rows_per_block):
        progress.check_cancelled()
        row_count = min(rows_per_block, header.height - first_row)
        try:
            cube_bhw, valid_hw = product.read_rows(first_row, row_count)
        except RuntimeError as error:
            raise InputError(f"Reading rows {first_row}-{first_row + row_count - 1} of {name} failed: "
                             f"{error}") from error
        yield first_row, cube_bhw, valid_hw
        progress.set_fraction((first_row + row_count) / header.height)


def _write_valid_pixel_mask(product: "EmitL2AMask", output_path: str, progress: Progress) -> int:
    """Byte GeoTIFF, 1 = usable, 0 = flagged or no data; returns the number of usable pixels."""
    header = product.header
    usable_pixels = 0
    with gdal_errors_as_exceptions(), RasterWriter(output_path, _output_grid(product),
                                                   ["Valid-pixel mask (1 = usable)"], nodata=MASK_NODATA,
                                                   data_type=gdal.GDT_Byte) as writer:
        for first_row, cube_bhw, valid_hw in _product_rows(product, product.swath.bands, progress):
            usable_hw = product.usable(cube_bhw, valid_hw)
            writer.write(first_row, usable_hw[None].astype(np.uint8), np.ones_like(usable_hw))
            usable_pixels += int(usable_hw.sum())
    progress.info(f"{usable_pixels} usable pixels of {header.width * header.height}.")
    return usable_pixels


def _write_product(product: "_Product", output_path: str, progress: Progress) -> int:
    """Write the product block by block through the atomic GeoTIFF writer; returns the number of valid pixels."""
    header = product.header
    band_names = [f"Band {index} ({wavelength:g} nm)"
                  for index, wavelength in enumerate(header.wavelengths_nm, 1)]
    valid_pixels = 0
    name = os.path.basename(product.source_path)
    band_range = _BandRange(len(band_names))
    with gdal_errors_as_exceptions(), RasterWriter(output_path, _output_grid(product), band_names,
                                                   header.wavelengths_nm) as writer:
        for first_row, cube_bhw, valid_hw in _product_rows(product, len(band_names), progress):
            writer.write(first_row, cube_bhw, valid_hw)
            band_range.add(cube_bhw[:, valid_hw])
            valid_pixels += int(valid_hw.sum())
        if valid_pixels == 0:
            raise InputError(f"{name} holds no valid pixel (every pixel is fill).")
        _flag_empty_bands(header, band_range.empty(), progress)
        _write_spectral_metadata(writer, header)
    return valid_pixels


class _BandRange:
    """Each band's lowest and highest value over the valid pixels, fill and NaN left out."""

    def __init__(self, band_count: int):
        self.low = np.full(band_count, np.inf)
        self.high = np.full(band_count, -np.inf)

    def add(self, values_bn: np.ndarray) -> None:
        usable = np.isfinite(values_bn) & (values_bn != OUTPUT_NODATA)
        self.low = np.minimum(self.low, np.where(usable, values_bn, np.inf).min(axis=1, initial=np.inf))
        self.high = np.maximum(self.high, np.where(usable, values_bn, -np.inf).max(axis=1, initial=-np.inf))

    def empty(self) -> np.ndarray:
        """Bands without two different values: no data at all, or one constant (a zeroed band)."""
        return ~(self.high > self.low)


def _flag_empty_bands(header: ProductHeader, empty: np.ndarray, progress: Progress) -> None:
    """Flag bad the bands that hold no information, whatever the product's own flags said, and say so."""
    newly = [bool(is_empty and good) for is_empty, good in zip(empty, header.good_bands)]
    if not any(newly):
        return
    header.good_bands = [good and not is_empty for good, is_empty in zip(header.good_bands, empty)]
    note = (f"{sum(newly)} bands hold no data or one constant value over the valid pixels and are flagged bad "
            f"(bbl = 0): {_band_ranges([not flag for flag in newly], header.wavelengths_nm)}.")
    header.notes.append(note)
    progress.info(note)


def _write_spectral_metadata(writer: RasterWriter, header: ProductHeader) -> None:
    """FWHM and bad-band flags per band, and the three lists in the ENVI domain as EnMAP-Box reads them."""
    def envi_list(values) -> str:
        return "{" + ", ".join(values) + "}"

    for index, (fwhm, good) in enumerate(zip(header.fwhm_nm, header.good_bands), 1):
        items = {"bbl": "1" if good else "0"}
        if fwhm is not None:
            items["fwhm"] = f"{fwhm:g}"
        writer.set_metadata(items, band=index)
    items = {"wavelength_units": "Nanometers",
             "wavelength": envi_list(f"{value:g}" for value in header.wavelengths_nm),
             "bbl": envi_list("1" if good else "0" for good in header.good_bands)}
    if all(value is not None for value in header.fwhm_nm):
        items["fwhm"] = envi_list(f"{value:g}" for value in header.fwhm_nm)
    writer.set_metadata(items, domain="ENVI")


# ---------------------------------------------------------------------------------------------------------------
# Products


class _Product:
    """A product opened for import: its output header, and rows of the output grid on demand."""

    kind = ""

    def __init__(self, path: str):
        self.source_path = path
        self.header: Optional[ProductHeader] = None

    def read_rows(self, first_row: int, row_count: int) -> Tuple[np.ndarray, np.ndarray]:
        """(cube_bhw float32 in output band order, valid_hw bool) for output rows [first_row, first_row+count)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the files."""


def _open_product(path: str, geometry: str = MAP_GRID) -> _Product:
    """Recognise and open a product, or raise InputError saying what ``path`` is and why it is not one."""
    if geometry not in GEOMETRIES:
        raise InputError(f"Unknown geometry {geometry!r}; choose one of {', '.join(GEOMETRIES)}.")
    product = _recognise_product(path, geometry)
    if geometry == SENSOR_GEOMETRY and not isinstance(product, _EmitSwath):
        product.header.notes.append(f"The {PRODUCT_NAMES[product.kind]} has no geometry lookup table to undo: "
                                    f"written as delivered.")
    return product


def _recognise_product(path: str, geometry: str) -> _Product:
    if not path:
        raise InputError("No product file was given.")
    container = container_file(path)
    if container is not None:
        return _open_container(container, path, geometry)
    if not os.path.exists(path):
        raise InputError(f"Product file not found: {path!r}.")
    if os.path.isdir(path):
        raise InputError(f"{path!r} is a folder: choose the product's file (for EnMAP, its METADATA.XML).")
    if path.lower().endswith(".zip"):
        return EnmapL2A(_zipped_enmap_metadata_xml(path))
    metadata_xml = _enmap_metadata_xml(path)
    if metadata_xml:
        return EnmapL2A(metadata_xml)
    data_path = _envi_data_file(path)
    if data_path:
        return EnviReflectance(data_path)
    raise InputError(
        f"{os.path.basename(path)} is not a product this importer knows: EMIT L2A (.nc), PRISMA L2D (.he5), "
        f"EnMAP L2A (its ZIP as delivered, METADATA.XML, or SPECTRAL_IMAGE with METADATA.XML beside it), an ENVI "
        f"raster with wavelengths (AVIRIS-NG, AVIRIS-3), or a NetCDF/HDF5 file with one reflectance cube.")


def _open_container(container: str, given_path: str, geometry: str) -> _Product:
    """NetCDF / HDF5: EMIT, PRISMA, or a generic cube with a named band dimension."""
    with gdal_errors_as_exceptions():
        try:
            return _recognise_container(container, given_path, geometry)
        except RuntimeError as error:
            raise InputError(f"Cannot read {os.path.basename(container)} as NetCDF/HDF5: {error}") from error


def _recognise_container(container: str, given_path: str, geometry: str) -> _Product:
    dataset = gdal.OpenEx(container, gdal.OF_MULTIDIM_RASTER)
    root = dataset.GetRootGroup()
    if _find_array(root, _PRISMA_CUBES.format("VNIR")) is not None:
        return PrismaL2D(container, dataset)
    location = root.OpenGroup("location") if "location" in (root.GetGroupNames() or []) else None
    if location is not None and "glt_x" in (location.GetMDArrayNames() or []):
        arrays = root.GetMDArrayNames() or []
        if "reflectance" in arrays:
            return EmitL2A(container, dataset, geometry)
        if "mask" in arrays:
            return EmitL2AMask(container, dataset, geometry)
    match = _SUBDATASET.match(given_path)
    return NetcdfCube(container, dataset, match.group("variable") if match else None)


def _find_array(root, full_name: str):
    """The array at ``full_name``, or None (called with GDAL errors as exceptions)."""
    try:
        return root.OpenMDArrayFromFullname(full_name)
    except RuntimeError:
        return None


def _attributes(node) -> Dict[str, object]:
    """Attributes of a group or array as Python values (numbers, strings, tuples)."""
    return {attribute.GetName(): attribute.Read() for attribute in (node.GetAttributes() or [])}


def _as_floats(value) -> List[float]:
    if isinstance(value, str):
        return [float(item) for item in re.split(r"[\s,{}]+", value) if item]
    return [float(item) for item in np.atleast_1d(value)]


class _MultidimCube:
    """A 3-D NetCDF/HDF5 array read as (bands, rows, columns), whatever its stored axis order; ``row_axis`` (else
    the first axis after the bands) is read as the rows, optionally reversed (a south-up grid read north up), and
    likewise the columns."""

    def __init__(self, array, band_axis: int, row_axis: Optional[int] = None, flip_rows: bool = False,
                 flip_columns: bool = False):
        self.array = array
        self.band_axis = band_axis
        sizes = [dimension.GetSize() for dimension in array.GetDimensions()]
        spatial_axes = [axis for axis in range(3) if axis != band_axis]
        if row_axis is not None:
            spatial_axes.sort(key=lambda axis: axis != row_axis)
        self.spatial_axes = spatial_axes
        self.flips = (flip_rows, flip_columns)
        self.bands = sizes[band_axis]
        self.rows, self.columns = (sizes[axis] for axis in self.spatial_axes)
        fill = array.GetNoDataValueAsDouble()
        if fill is None:
            fill = _attributes(array).get("_FillValue")
        self.fill = None if fill is None else float(np.atleast_1d(fill)[0])

    def read(self, first_row: int, row_count: int, first_column: int = 0, column_count: Optional[int] = None
             ) -> np.ndarray:
        """cube_bhw (float32) for the given rows and columns, all bands."""
        column_count = self.columns - first_column if column_count is None else column_count
        start, count = [0, 0, 0], [self.bands] * 3
        for axis, first, number, size, flip in zip(self.spatial_axes, (first_row, first_column),
                                                   (row_count, column_count), (self.rows, self.columns),
                                                   self.flips):
            start[axis], count[axis] = (size - first - number if flip else first), number
        values = np.asarray(self.array.ReadAsArray(array_start_idx=start, count=count))
        cube_bhw = values.transpose([self.band_axis] + self.spatial_axes)
        if self.flips[0]:
            cube_bhw = cube_bhw[:, ::-1]
        if self.flips[1]:
            cube_bhw = cube_bhw[:, :, ::-1]
        return np.ascontiguousarray(cube_bhw, dtype=np.float32)


def _dimension_axis(dimension) -> Optional[str]:
    """BAND, X or Y for a dimension of a cube: what its coordinate variable says (CF ``axis`` and
    ``standard_name``, read by GDAL as the dimension's type; wavelength units), else its name; None when neither
    says."""
    kind = dimension.GetType()
    if kind in ("HORIZONTAL_X", "HORIZONTAL_Y"):
        return X if kind == "HORIZONTAL_X" else Y
    coordinate = dimension.GetIndexingVariable()
    if coordinate is not None:
        attributes = _attributes(coordinate)
        said = _STANDARD_NAME_AXES.get(str(attributes.get("standard_name", "")).lower()) or \
            {"X": X, "Y": Y}.get(str(attributes.get("axis", "")).upper())
        if said:
            return said
        if stated_nanometres_per_unit(coordinate.GetUnit() or str(attributes.get("units", ""))) is not None:
            return BAND
    name = dimension.GetName().split("/")[-1]
    for axis, pattern in ((BAND, _BAND_DIMENSIONS), (X, _X_DIMENSIONS), (Y, _Y_DIMENSIONS)):
        if pattern.match(name):
            return axis
    return None


def _cube_axes(array, name: str, path: str) -> Tuple[int, int, int, str]:
    """(band, row, column) axes of a 3-D variable and a note on how they were decided, from what its dimensions
    say; the one dimension left when the other two are known takes the third role. Two dimensions that say
    nothing beside a band dimension are read in CF's order (rows before columns). InputError naming every
    dimension when no order can be decided."""
    dimensions = array.GetDimensions()
    names = [dimension.GetName().split("/")[-1] for dimension in dimensions]
    said = [_dimension_axis(dimension) for dimension in dimensions]
    reading = ", ".join(f"'{dimension}': {axis or 'says nothing'}" for dimension, axis in zip(names, said))
    refusal = (f"{os.path.basename(path)}: the dimensions of {name}({', '.join(names)}) do not decide which holds "
               f"the bands and which are x and y ({reading}), so which axis holds the bands is unknown; FERS "
               f"refuses to guess. Name the dimensions (band or wavelength, y or lat, x or lon) or give their "
               f"coordinate variables CF 'axis' / 'standard_name' attributes.")
    axes = {}
    for axis in (BAND, X, Y):
        claimed = [index for index, value in enumerate(said) if value == axis]
        if len(claimed) > 1:
            raise InputError(refusal)
        if claimed:
            axes[axis] = claimed[0]
    silent = [index for index, value in enumerate(said) if value is None]
    note = ""
    if len(silent) == 1 and len(axes) == 2:
        axes[next(axis for axis in (BAND, X, Y) if axis not in axes)] = silent[0]
    elif len(silent) == 2 and BAND in axes:
        axes[Y], axes[X] = silent
        note = " (no dimension says which is x and which is y: read in CF's order, rows before columns)"
    if len(axes) != 3:
        raise InputError(refusal)
    return axes[BAND], axes[Y], axes[X], note


class _CoordinateGrid:
    """How a cube's x and y coordinate variables place it: whether rows (stored south to north) and columns
    (east to west) are reversed to write north up, and a geotransform (pixel centres at the coordinates) when
    both are 1-D and regularly spaced, with the CRS of the variable's grid mapping (WGS 84 for lon / lat)."""

    def __init__(self, array, x_dimension, y_dimension):
        self.flip_rows = self.flip_columns = False
        self.geotransform: Tuple[float, ...] = (0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
        self.projection_wkt = ""
        x_values, y_values = (self._values(dimension) for dimension in (x_dimension, y_dimension))
        if x_values is None or y_values is None:
            self.note = "no coordinate variables of x and y: written as stored, on a pixel grid."
            return
        self.flip_columns = bool(x_values[-1] < x_values[0])
        self.flip_rows = bool(y_values[-1] > y_values[0])
        order = "rows stored south to north are written north up; " if self.flip_rows else ""
        x_step, y_step = (self._step(values) for values in (x_values, y_values))
        if x_step is None or y_step is None:
            self.note = order + "its x / y coordinates are not regularly spaced: the output is on a pixel grid."
            return
        self.geotransform = (float(x_values.min()) - x_step / 2, x_step, 0.0,
                             float(y_values.max()) + y_step / 2, 0.0, -y_step)
        self.projection_wkt = self._crs_wkt(array, x_dimension, y_dimension)
        crs = "the CRS of its grid mapping" if self.projection_wkt else "no CRS (no grid mapping found)"
        if self.projection_wkt and self._is_lon_lat(x_dimension, y_dimension):
            crs = "WGS 84 (lon / lat)"
        self.note = order + f"georeferenced from its coordinate variables ({x_step:g} x {y_step:g} pixels, {crs})."

    @staticmethod
    def _values(dimension) -> Optional[np.ndarray]:
        """The dimension's 1-D map coordinate values when they are finite and strictly monotonic, else None."""
        coordinate = dimension.GetIndexingVariable()
        if coordinate is None or coordinate.GetDimensionCount() != 1:
            return None
        standard_name = str(_attributes(coordinate).get("standard_name", "")).lower()
        if dimension.GetType() not in ("HORIZONTAL_X", "HORIZONTAL_Y") and standard_name not in _STANDARD_NAME_AXES \
                and not _MAP_DIMENSIONS.match(dimension.GetName().split("/")[-1]):
            return None
        values = np.asarray(coordinate.ReadAsArray(), dtype=np.float64)
        steps = np.diff(values)
        if values.size < 2 or not np.isfinite(values).all() or not ((steps > 0).all() or (steps < 0).all()):
            return None
        return values

    @staticmethod
    def _step(values: np.ndarray) -> Optional[float]:
        steps = np.abs(np.diff(values))
        return float(steps.mean()) if np.allclose(steps, steps.mean(), rtol=1e-3, atol=0) else None

    @staticmethod
    def _is_lon_lat(x_dimension, y_dimension) -> bool:
        names = {dimension.GetName().split("/")[-1].lower() for dimension in (x_dimension, y_dimension)}
        standard = {str(_attributes(dimension.GetIndexingVariable()).get("standard_name", "")).lower()
                    for dimension in (x_dimension, y_dimension)}
        return names <= {"lon", "lat", "longitude", "latitude"} or standard == {"longitude", "latitude"}

    def _crs_wkt(self, array, x_dimension, y_dimension) -> str:
        reference = array.GetSpatialRef()
        if reference is not None:
            return reference.ExportToWkt()
        return _wgs84_wkt() if self._is_lon_lat(x_dimension, y_dimension) else ""


def _valid_pixels(cube_bhw: np.ndarray, fill: Optional[float]) -> np.ndarray:
    """Pixels with at least one finite band that is not the fill value."""
    usable = np.isfinite(cube_bhw)
    if fill is not None:
        usable &= cube_bhw != np.float32(fill)
    return usable.any(axis=0)


class NetcdfCube(_Product):
    """A NetCDF/HDF5 file with one obvious reflectance cube: the only 3-D variable, or one named reflectance, in
    any dimension order that its dimensions say (``_cube_axes``): (band, y, x) as xarray and many L2 processors
    write it, (y, x, band), (band, x, y), ... Rows are written north up and the grid georeferenced from regularly
    spaced 1-D coordinate variables of x and y, with the CRS of the variable's grid mapping (WGS 84 for lon/lat)."""

    kind = NETCDF_CUBE

    def __init__(self, path: str, dataset, variable: Optional[str] = None):
        super().__init__(path)
        self._dataset = dataset
        root = dataset.GetRootGroup()
        cubes = {}
        self._collect_cubes(root, "", cubes)
        name = self._choose(cubes, variable, path)
        array = cubes[name]
        dimensions = array.GetDimensions()
        names = [dimension.GetName().split("/")[-1] for dimension in dimensions]
        band_axis, row_axis, column_axis, order_note = _cube_axes(array, name, path)
        grid = _CoordinateGrid(array, dimensions[column_axis], dimensions[row_axis])
        self.cube = _MultidimCube(array, band_axis, row_axis, grid.flip_rows, grid.flip_columns)
        wavelengths = self._band_coordinate(dimensions[band_axis]) or self._wavelengths(root, names[band_axis])
        notes = [f"Read {name}({', '.join(names)}) with bands along '{names[band_axis]}', rows along "
                 f"'{names[row_axis]}', columns along '{names[column_axis]}'{order_note}; {grid.note}"]
        if wavelengths is None:
            notes.append("No wavelengths found: bands are numbered 1, 2, ...")
            wavelengths = [float(index) for index in range(1, self.cube.bands + 1)]
        self.header = ProductHeader(kind=self.kind, width=self.cube.columns, height=self.cube.rows,
                                    wavelengths_nm=wavelengths, fwhm_nm=[None] * self.cube.bands,
                                    good_bands=[True] * self.cube.bands, geotransform=grid.geotransform,
                                    projection_wkt=grid.projection_wkt, notes=notes)

    @staticmethod
    def _band_coordinate(dimension) -> Optional[List[float]]:
        """The band dimension's coordinate variable as wavelengths in nm, when its units or name say so."""
        coordinate = dimension.GetIndexingVariable()
        if coordinate is None:
            return None
        units = coordinate.GetUnit() or str(_attributes(coordinate).get("units", ""))
        if stated_nanometres_per_unit(units) is None and "wavelength" not in coordinate.GetName().lower():
            return None
        values = _as_floats(coordinate.ReadAsArray())
        factor = nanometres_per_unit(values, "")  # by magnitude: files state "nm" for micrometre values too
        return [value * factor for value in values]

    def _collect_cubes(self, group, prefix: str, cubes: dict) -> None:
        for name in group.GetMDArrayNames() or []:
            array = group.OpenMDArray(name)
            if array.GetDimensionCount() == 3:
                cubes[f"{prefix}/{name}".lstrip("/")] = array
        for name in group.GetGroupNames() or []:
            self._collect_cubes(group.OpenGroup(name), f"{prefix}/{name}", cubes)

    @staticmethod
    def _choose(cubes: dict, variable: Optional[str], path: str) -> str:
        if variable:
            variable = variable.lstrip("/")
            if variable not in cubes:
                raise InputError(f"{os.path.basename(path)} has no 3-D variable {variable!r}; it has "
                                 f"{', '.join(cubes) or 'none'}.")
            return variable
        reflectance = [name for name in cubes if "reflectance" in name.split("/")[-1].lower()]
        if len(reflectance) == 1:
            return reflectance[0]
        if len(cubes) == 1:
            return next(iter(cubes))
        raise InputError(
            f"{os.path.basename(path)} has no single reflectance cube to import (3-D variables: "
            f"{', '.join(cubes) or 'none'}). Name the variable, as in NETCDF:\"{path}\":VARIABLE.")

    def _wavelengths(self, group, band_dimension: str) -> Optional[List[float]]:
        """A 1-D variable named wavelength(s) of the band dimension's size, anywhere in the file, in nm."""
        for name in group.GetMDArrayNames() or []:
            array = group.OpenMDArray(name)
            if "wavelength" in name.lower() and array.GetDimensionCount() == 1 and \
                    array.GetDimensions()[0].GetSize() == self.cube.bands:
                values = _as_floats(array.ReadAsArray())
                factor = nanometres_per_unit(values, str(_attributes(array).get("units", "")).lower())
                return [value * factor for value in values]
        for name in group.GetGroupNames() or []:
            found = self._wavelengths(group.OpenGroup(name), band_dimension)
            if found is not None:
                return found
        return None

    def read_rows(self, first_row, row_count):
        cube_bhw = self.cube.read(first_row, row_count)
        return cube_bhw, _valid_pixels(cube_bhw, self.cube.fill)

    def close(self):
        self._dataset = None


class _EmitSwath(_Product):
    """An EMIT L2A NetCDF variable VARIABLE(downtrack, crosstrack, bands), fill -9999, with lat / lon
    (downtrack, crosstrack) and 1-based glt_x / glt_y (0: no pixel) in group location, on the map grid of the
    global attributes geotransform and spatial_ref.

    Output grid: that map grid (MAP_GRID: each map pixel takes the swath pixel the GLT names, so about half of a
    rotated grid is fill and some swath pixels appear twice or not at all), or the swath as recorded
    (SENSOR_GEOMETRY: every pixel once, no fill, georeferenced by ground control points from lat / lon, which QGIS
    and every FERS output keep). The reflectance and the mask file of one granule share their GLT and lat / lon,
    so their imports line up pixel for pixel in either geometry."""

    kind = ""
    variable = ""

    def __init__(self, path: str, dataset, geometry: str = MAP_GRID):
        super().__init__(path)
        self._dataset = dataset
        self.geometry = geometry
        root = dataset.GetRootGroup()
        self.swath = _MultidimCube(root.OpenMDArray(self.variable), band_axis=2)
        if self.swath.fill is None:
            self.swath.fill = PRODUCT_FILL
        location = root.OpenGroup("location")
        self._glt_x = location.OpenMDArray("glt_x")
        self._glt_y = location.OpenMDArray("glt_y")
        height, width = (dimension.GetSize() for dimension in self._glt_x.GetDimensions())
        attributes = _attributes(root)
        parameters = root.OpenGroup("sensor_band_parameters") \
            if "sensor_band_parameters" in (root.GetGroupNames() or []) else None
        self._parameters = parameters
        self._parameter_names = (parameters.GetMDArrayNames() or []) if parameters is not None else []
        if geometry == SENSOR_GEOMETRY:
            gcps = _swath_gcps(location, path)
            self.grid = {"width": self.swath.columns, "height": self.swath.rows, "gcps": gcps,
                         "gcp_projection_wkt": _wgs84_wkt()}
            self.geometry_note = (f"EMIT: the swath in sensor geometry, {self.swath.columns} x {self.swath.rows} "
                                  f"pixels as recorded (no fill, no repeated pixels), georeferenced by {len(gcps)} "
                                  f"ground control points from location/lat and lon.")
        else:
            if "geotransform" not in attributes:
                raise InputError(f"{os.path.basename(path)} has a GLT but no 'geotransform' attribute: the map "
                                 f"grid is unknown; import it in sensor geometry instead.")
            self.grid = {"width": width, "height": height,
                         "geotransform": tuple(_as_floats(attributes["geotransform"])),
                         "projection_wkt": str(attributes.get("spatial_ref", ""))}
            self.geometry_note = (f"EMIT: orthorectified {self.swath.rows} x {self.swath.columns} swath pixels onto "
                                  f"the product's {width} x {height} map grid with its geometry lookup table.")

    def band_parameter(self, name: str) -> Optional[list]:
        """A 1-D variable of group sensor_band_parameters, or None."""
        if name not in self._parameter_names:
            return None
        array = self._parameters.OpenMDArray(name)
        if array.GetDataType().GetClass() == gdal.GEDTC_STRING:
            return list(array.Read())  # strings: GDAL's numpy reader takes numbers only
        return list(np.atleast_1d(array.ReadAsArray()))

    def read_rows(self, first_row, row_count):
        if self.geometry == SENSOR_GEOMETRY:
            cube_bhw = self.swath.read(first_row, row_count)
            return cube_bhw, _valid_pixels(cube_bhw, self.swath.fill)
        width, bands = self.grid["width"], self.swath.bands
        glt_x = np.asarray(self._glt_x.ReadAsArray(array_start_idx=[first_row, 0], count=[row_count, width]),
                           dtype=np.int64)
        glt_y = np.asarray(self._glt_y.ReadAsArray(array_start_idx=[first_row, 0], count=[row_count, width]),
                           dtype=np.int64)
        mapped = (glt_x > 0) & (glt_y > 0)  # 0 (the GLT's fill) is "no swath pixel here"
        cube_hwb = np.full((row_count, width, bands), self.swath.fill, dtype=np.float32)
        if mapped.any():
            lines, columns = glt_y[mapped] - 1, glt_x[mapped] - 1
            first_column, last_column = int(columns.min()), int(columns.max())
            column_count = last_column - first_column + 1
            lines_per_read = max(1, BLOCK_BYTES // max(1, column_count * bands * 4))
            targets = np.flatnonzero(mapped.ravel())
            flat_hwb = cube_hwb.reshape(-1, bands)
            for first_line in range(int(lines.min()), int(lines.max()) + 1, lines_per_read):
                wanted = (lines >= first_line) & (lines < first_line + lines_per_read)
                if not wanted.any():
                    continue
                line_count = min(lines_per_read, self.swath.rows - first_line)
                source_bhw = self.swath.read(first_line, line_count, first_column, column_count)
                flat_hwb[targets[wanted]] = source_bhw[:, lines[wanted] - first_line,
                                                       columns[wanted] - first_column].T
        cube_bhw = np.ascontiguousarray(cube_hwb.transpose(2, 0, 1))
        return cube_bhw, mapped & _valid_pixels(cube_bhw, self.swath.fill)

    def close(self):
        self._dataset = None


class EmitL2A(_EmitSwath):
    """EMIT L2A reflectance: reflectance(downtrack, crosstrack, bands); wavelengths, fwhm and good_wavelengths in
    group sensor_band_parameters."""

    kind = EMIT_L2A
    variable = "reflectance"

    def __init__(self, path: str, dataset, geometry: str = MAP_GRID):
        super().__init__(path, dataset, geometry)
        bands = self.swath.bands
        wavelengths = self.band_parameter("wavelengths")
        if wavelengths is None or len(wavelengths) != bands:
            raise InputError(f"{os.path.basename(path)} has no sensor_band_parameters/wavelengths for its {bands} "
                             f"bands.")
        wavelengths = [float(value) for value in wavelengths]
        fwhm = [float(value) for value in self.band_parameter("fwhm") or []] or [None] * bands
        good = [value == 1 for value in (self.band_parameter("good_wavelengths") or [1] * bands)]
        notes = [self.geometry_note]
        if not all(good):
            notes.append(f"EMIT good_wavelengths marks {good.count(False)} bands as bad (bbl = 0): "
                         f"{_band_ranges(good, wavelengths)}.")
        self.header = ProductHeader(kind=self.kind, wavelengths_nm=wavelengths, fwhm_nm=fwhm, good_bands=good,
                                    notes=notes, **self.grid)


class EmitL2AMask(_EmitSwath):
    """EMIT L2A mask: mask(downtrack, crosstrack, bands) with six 0/1 flag bands (cloud, cirrus, water,
    spacecraft, dilated cloud, aggregate) and two data bands (AOD, water vapour), named in
    sensor_band_parameters/mask_bands. Imported as the valid-pixel mask the detection algorithms take: 1 where
    the aggregate flag (the union EMIT recommends excluding; water is not in it) leaves the pixel, 0 where it
    flags it or there is no data."""

    kind = EMIT_L2A_MASK
    variable = "mask"
    # The aggregate flag's 0-based band in the user guide's band order, for a file that names no band.
    AGGREGATE_BAND = 7

    def __init__(self, path: str, dataset, geometry: str = MAP_GRID):
        super().__init__(path, dataset, geometry)
        names = [str(name) for name in self.band_parameter("mask_bands") or []]
        aggregate = [index for index, name in enumerate(names) if "aggregate" in name.lower()]
        flags = [index for index, name in enumerate(names) if "flag" in name.lower()]
        if aggregate:
            self.flag_bands, used = tuple(aggregate), f"its aggregate flag ({names[aggregate[0]]})"
        elif flags:
            self.flag_bands, used = tuple(flags), "its flag bands (" + ", ".join(names[i] for i in flags) + ")"
        elif self.swath.bands == self.AGGREGATE_BAND + 1:
            self.flag_bands, used = (self.AGGREGATE_BAND,), f"band {self.AGGREGATE_BAND + 1} (EMIT's aggregate flag)"
        else:
            raise InputError(f"{os.path.basename(path)}: its {self.swath.bands} mask bands are not named "
                             f"(sensor_band_parameters/mask_bands): which one flags unusable pixels is unknown.")
        notes = [self.geometry_note, f"EMIT mask: a pixel is usable (1) unless {used} flags it or it holds no "
                                     f"data (0); give the result as the detection algorithms' valid-pixel mask."]
        self.header = ProductHeader(kind=self.kind, wavelengths_nm=[], fwhm_nm=[], good_bands=[], notes=notes,
                                    **self.grid)

    def usable(self, cube_bhw: np.ndarray, valid_hw: np.ndarray) -> np.ndarray:
        """usable_hw (bool) of rows read by read_rows: data, and no flag band set."""
        flagged_hw = (cube_bhw[list(self.flag_bands)] == 1).any(axis=0)
        return valid_hw & ~flagged_hw


def _swath_gcps(location, path: str) -> Tuple[gdal.GCP, ...]:
    """Ground control points of a swath at the centres of a regular grid of its pixels (GCPS_PER_AXIS along each
    axis, the last line and sample included), from the location group's lat / lon (fill and NaN skipped)."""
    if not {"lat", "lon"} <= set(location.GetMDArrayNames() or []):
        raise InputError(f"{os.path.basename(path)} has no location/lat and lon: its swath cannot be georeferenced "
                         f"in sensor geometry; import it on its map grid.")
    latitude, longitude = (location.OpenMDArray(name) for name in ("lat", "lon"))
    rows, columns = (dimension.GetSize() for dimension in latitude.GetDimensions())
    lines = sorted(set(range(0, rows, max(1, rows // GCPS_PER_AXIS))) | {rows - 1})
    samples = sorted(set(range(0, columns, max(1, columns // GCPS_PER_AXIS))) | {columns - 1})
    gcps = []
    for line in lines:
        lat_row, lon_row = (np.asarray(array.ReadAsArray(array_start_idx=[line, 0], count=[1, columns]),
                                       dtype=np.float64)[0] for array in (latitude, longitude))
        for sample in samples:
            lat, lon = lat_row[sample], lon_row[sample]
            if np.isfinite(lat) and np.isfinite(lon) and abs(lat) <= 90 and abs(lon) <= 360:
                gcps.append(gdal.GCP(float(lon), float(lat), 0.0, sample + 0.5, line + 0.5))
    if len(gcps) < 3:
        raise InputError(f"{os.path.basename(path)}: location/lat and lon hold fewer than 3 usable positions: its "
                         f"swath cannot be georeferenced in sensor geometry; import it on its map grid.")
    return tuple(gcps)


def _wgs84_wkt() -> str:
    """EMIT's lat / lon are WGS 84 degrees."""
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    return srs.ExportToWkt()


class PrismaL2D(_Product):
    """PRISMA L2D: VNIR_Cube and SWIR_Cube (rows, bands, columns) of 16-bit numbers scaled to reflectance by
    L2ScaleVnirMin/Max and L2ScaleSwirMin/Max; centre wavelengths List_Cw_Vnir / List_Cw_Swir in descending order,
    0 for unused bands; map grid from Epsg_Code and the UL / LR corner pixel centres. Output: both cubes in
    ascending wavelength order; unused bands left out; SWIR bands that overlap the VNIR range flagged bad."""

    kind = PRISMA_L2D

    def __init__(self, path: str, dataset):
        super().__init__(path)
        self._dataset = dataset
        root = dataset.GetRootGroup()
        attributes = _attributes(root)
        name = os.path.basename(path)
        missing = [key for key in ("Epsg_Code", "Product_ULcorner_easting", "Product_ULcorner_northing",
                                   "Product_LRcorner_easting", "Product_LRcorner_northing") if key not in attributes]
        if missing:
            raise InputError(f"{name} lacks the PRISMA attributes {', '.join(missing)}: it cannot be georeferenced.")
        self.cubes, self._scale, sources = {}, {}, []
        for region, label in (("VNIR", "Vnir"), ("SWIR", "Swir")):
            array = _find_array(root, _PRISMA_CUBES.format(region))
            if array is None:
                continue
            cube = _MultidimCube(array, band_axis=1)
            self.cubes[region] = cube
            low = float(np.atleast_1d(attributes.get(f"L2Scale{label}Min", 0.0))[0])
            high = float(np.atleast_1d(attributes.get(f"L2Scale{label}Max", 1.0))[0])
            self._scale[region] = (low, (high - low) / 65535.0)
            centres = _as_floats(attributes.get(f"List_Cw_{label}", []))
            widths = _as_floats(attributes.get(f"List_Fwhm_{label}", [])) or [None] * len(centres)
            flags = _as_floats(attributes.get(f"List_Cw_{label}_Flags", [])) or [1.0] * len(centres)
            if len(centres) != cube.bands:
                raise InputError(f"{name}: List_Cw_{label} has {len(centres)} wavelengths for {cube.bands} "
                                 f"{region} bands.")
            sources += [(centre, region, index, widths[index], flags[index] != 0)
                        for index, centre in enumerate(centres) if centre > 0]
        unused = sum(cube.bands for cube in self.cubes.values()) - len(sources)
        sources.sort(key=lambda source: source[0])  # ascending wavelength: both cubes are stored descending
        vnir_end = max((source[0] for source in sources if source[1] == "VNIR"), default=0.0)
        good = [flagged and not (region == "SWIR" and centre <= vnir_end)
                for centre, region, _, _, flagged in sources]
        self._bands = [(region, index) for _, region, index, _, _ in sources]
        rows, columns = self.cubes["VNIR"].rows, self.cubes["VNIR"].columns
        geotransform, notes = self._grid(attributes, rows, columns)
        notes.append(f"PRISMA: {len(sources)} bands in ascending wavelength order"
                     + (f"; {unused} unused bands (wavelength 0) left out" if unused else "") + ".")
        overlap = [source for source, is_good in zip(sources, good) if not is_good]
        if overlap:
            wavelengths = [source[0] for source in sources]
            notes.append(f"PRISMA: {len(overlap)} bands flagged bad (bbl = 0): SWIR bands overlapping the VNIR "
                         f"range or flagged in List_Cw_*_Flags: {_band_ranges(good, wavelengths)}.")
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(int(np.atleast_1d(attributes["Epsg_Code"])[0]))
        self.header = ProductHeader(kind=self.kind, width=columns, height=rows,
                                    wavelengths_nm=[source[0] for source in sources],
                                    fwhm_nm=[source[3] for source in sources], good_bands=good,
                                    geotransform=geotransform, projection_wkt=srs.ExportToWkt(), notes=notes)

    @staticmethod
    def _grid(attributes, rows: int, columns: int):
        """Geotransform from the UL and LR corner pixel centres (30 m pixels when one row or column)."""
        def value(key):
            return float(np.atleast_1d(attributes[key])[0])

        west, north = value("Product_ULcorner_easting"), value("Product_ULcorner_northing")
        east, south = value("Product_LRcorner_easting"), value("Product_LRcorner_northing")
        size_x = (east - west) / (columns - 1) if columns > 1 else 30.0
        size_y = (north - south) / (rows - 1) if rows > 1 else 30.0
        notes = [f"PRISMA: {size_x:g} x {size_y:g} m pixels from the product's corner coordinates."]
        return (west - size_x / 2, size_x, 0.0, north + size_y / 2, 0.0, -size_y), notes

    def read_rows(self, first_row, row_count):
        numbers = {region: cube.read(first_row, row_count) for region, cube in self.cubes.items()}
        # Fill is 0 in every band of both cubes.
        valid_hw = np.zeros(next(iter(numbers.values())).shape[1:], dtype=bool)
        for cube_bhw in numbers.values():
            valid_hw |= (cube_bhw != 0).any(axis=0)
        cube_bhw = np.empty((len(self._bands),) + valid_hw.shape, dtype=np.float32)
        for output_index, (region, index) in enumerate(self._bands):
            low, step = self._scale[region]
            cube_bhw[output_index] = low + numbers[region][index] * step
        return cube_bhw, valid_hw

    def close(self):
        self._dataset = None


def _band_ranges(good: Sequence[bool], wavelengths: Sequence[float]) -> str:
    """'band 3 (950 nm), bands 7-9 (1350-1420 nm)' for the bad bands."""
    parts, index = [], 0
    while index < len(good):
        if good[index]:
            index += 1
            continue
        end = index
        while end + 1 < len(good) and not good[end + 1]:
            end += 1
        if end == index:
            parts.append(f"band {index + 1} ({wavelengths[index]:g} nm)")
        else:
            parts.append(f"bands {index + 1}-{end + 1} ({wavelengths[index]:g}-{wavelengths[end]:g} nm)")
        index = end + 1
    return ", ".join(parts)


class _GdalRaster(_Product):
    """A product GDAL reads as a raster (GeoTIFF, ENVI): rows read through GDAL, then ``_to_reflectance``."""

    def __init__(self, path: str):
        super().__init__(path)
        with gdal_errors_as_exceptions():
            try:
                self._dataset = gdal.Open(path, gdal.GA_ReadOnly)
            except RuntimeError as error:
                raise InputError(f"Cannot read {os.path.basename(path)} as a raster: {error}") from error
        self.fill = self._dataset.GetRasterBand(1).GetNoDataValue()

    def grid(self) -> dict:
        return {"width": self._dataset.RasterXSize, "height": self._dataset.RasterYSize,
                "geotransform": tuple(self._dataset.GetGeoTransform()),
                "projection_wkt": self._dataset.GetProjection() or ""}

    def read_rows(self, first_row, row_count):
        numbers = np.asarray(self._dataset.ReadAsArray(0, first_row, self._dataset.RasterXSize, row_count),
                             dtype=np.float64).reshape(self._dataset.RasterCount, row_count, -1)
        valid_hw = _valid_pixels(numbers, self.fill)
        cube_bhw = self._to_reflectance(numbers).astype(np.float32)
        if self.fill is not None:
            cube_bhw[numbers == self.fill] = OUTPUT_NODATA
        return cube_bhw, valid_hw

    def _to_reflectance(self, numbers_bhw: np.ndarray) -> np.ndarray:
        return numbers_bhw

    def close(self):
        self._dataset = None


def _envi_data_file(path: str) -> Optional[str]:
    """The ENVI data file for ``path`` (itself, or the data file beside a chosen .hdr), if GDAL reads it as ENVI
    with wavelengths."""
    candidates = [path]
    if path.lower().endswith(".hdr"):
        stem = path[:-4]
        candidates = [stem] + [stem + extension for extension in (".img", ".bsq", ".bil", ".bip", ".dat", ".raw")]
    for candidate in candidates:
        if not os.path.isfile(candidate):
            continue
        gdal.PushErrorHandler("CPLQuietErrorHandler")  # "not recognised as ENVI" is an answer here, not an error
        try:
            dataset = gdal.OpenEx(candidate, gdal.OF_RASTER, allowed_drivers=["ENVI"])
        except RuntimeError:  # GDAL's errors raise once anyone called gdal.UseExceptions() (QGIS 3.40's Processing)
            dataset = None
        finally:
            gdal.PopErrorHandler()
        if dataset is not None and dataset.GetMetadataItem("wavelength", "ENVI"):
            return candidate
    return None


class EnviReflectance(_GdalRaster):
    """AVIRIS-NG / AVIRIS-3 ENVI reflectance: wavelengths (nm or um) and fwhm, bbl, fill -9999 (declared as data
    ignore value or not), map info (north-up or rotated) as GDAL reads it."""

    kind = ENVI_REFLECTANCE

    def __init__(self, path: str):
        super().__init__(path)
        envi = self._dataset.GetMetadata("ENVI") or {}
        bands = self._dataset.RasterCount
        wavelengths = _as_floats(envi["wavelength"])
        if len(wavelengths) != bands:
            raise InputError(f"{os.path.basename(path)}: the header lists {len(wavelengths)} wavelengths for "
                             f"{bands} bands.")
        factor = nanometres_per_unit(wavelengths, envi.get("wavelength_units", "").lower())
        wavelengths = [value * factor for value in wavelengths]
        fwhm = _as_floats(envi.get("fwhm", ""))
        fwhm = [value * factor for value in fwhm] if len(fwhm) == bands else [None] * bands
        bbl = _as_floats(envi.get("bbl", ""))
        good = [value != 0 for value in bbl] if len(bbl) == bands else [True] * bands
        notes = []
        if self.fill is None:
            self.fill = PRODUCT_FILL
            notes.append(f"No data ignore value declared: {PRODUCT_FILL:g}, the AVIRIS fill value, is treated as fill.")
        if not all(good):
            notes.append(f"The header's bbl marks {good.count(False)} bands as bad: {_band_ranges(good, wavelengths)}.")
        self.header = ProductHeader(kind=self.kind, wavelengths_nm=wavelengths, fwhm_nm=fwhm, good_bands=good,
                                    notes=notes, **self.grid())


def _enmap_metadata_xml(path: str) -> Optional[str]:
    """The METADATA.XML of an EnMAP product when ``path`` is it, or its SPECTRAL_IMAGE raster (paths may be GDAL
    /vsizip/ paths)."""
    folder, name = os.path.split(path)
    if name.upper().endswith("METADATA.XML"):
        candidate = path
    elif "SPECTRAL_IMAGE" in name.upper():
        prefix = name[:name.upper().index("SPECTRAL_IMAGE")]
        matches = [entry for entry in (gdal.ReadDir(folder or ".") or [])
                   if entry.upper() == (prefix + "METADATA.XML").upper()]
        if not matches:
            return None
        candidate = os.path.join(folder, matches[0])
    else:
        return None
    return candidate if b"bandCharacterisation" in _file_bytes(candidate) else None


def _file_bytes(path: str) -> bytes:
    """A whole (small) file's content, also inside a ZIP (GDAL's virtual file systems)."""
    handle = gdal.VSIFOpenL(path, "rb")
    if handle is None:
        raise InputError(f"Cannot read {path}.")
    try:
        gdal.VSIFSeekL(handle, 0, 2)
        size = gdal.VSIFTellL(handle)
        gdal.VSIFSeekL(handle, 0, 0)
        return gdal.VSIFReadL(1, size, handle) or b""
    finally:
        gdal.VSIFCloseL(handle)


def _zipped_enmap_metadata_xml(path: str) -> str:
    """The METADATA.XML inside an EnMAP delivery ZIP (at any depth, also inside one inner ZIP), read in place."""
    archive = "/vsizip/" + os.path.abspath(path)
    entries = gdal.ReadDirRecursive(archive)
    if entries is None:
        raise InputError(f"{os.path.basename(path)} is not a ZIP file GDAL can read (damaged or incomplete?).")
    candidates = [f"{archive}/{entry}" for entry in entries if entry.upper().endswith("METADATA.XML")]
    for inner in (entry for entry in entries if entry.upper().endswith(".ZIP")):
        inner_archive = f"/vsizip/{{{archive}/{inner}}}"
        candidates += [f"{inner_archive}/{entry}" for entry in gdal.ReadDirRecursive(inner_archive) or []
                       if entry.upper().endswith("METADATA.XML")]
    products = [candidate for candidate in candidates if _enmap_metadata_xml(candidate)]
    if len(products) != 1:
        found = "no EnMAP METADATA.XML" if not products else f"{len(products)} EnMAP products"
        raise InputError(f"{os.path.basename(path)} holds {found}: import an EnMAP L2A delivery ZIP with one "
                         f"product, or unzip it and choose the product's METADATA.XML.")
    return products[0]


class EnmapL2A(_GdalRaster):
    """EnMAP L2A: SPECTRAL_IMAGE GeoTIFF of scaled numbers; METADATA.XML gives per band the centre wavelength
    (wavelengthCenterOfGravity), FWHMOfBand, GainOfBand and OffsetOfBand (reflectance = gain x number + offset),
    and band statistics: a band with zero standard deviation holds no data and is flagged bad."""

    kind = ENMAP_L2A

    def __init__(self, metadata_xml: str):
        root = ElementTree.fromstring(_file_bytes(metadata_xml))  # nosec B314: a local product file the user chose
        super().__init__(self._spectral_image(metadata_xml))
        self.metadata_xml = metadata_xml
        bands = self._dataset.RasterCount
        characterisation = root.findall(".//bandCharacterisation/bandID")
        if len(characterisation) != bands:
            raise InputError(f"{os.path.basename(metadata_xml)} describes {len(characterisation)} bands but the "
                             f"spectral image has {bands}.")

        def numbers(elements, *tags):
            values = []
            for element in elements:
                text = next((element.findtext(tag) for tag in tags if element.find(tag) is not None), None)
                values.append(None if text is None else float(text))
            return values

        wavelengths = numbers(characterisation, "wavelengthCenterOfGravity", "wavelengthCenterOfBand")
        if None in wavelengths:
            raise InputError(f"{os.path.basename(metadata_xml)} lacks a band's wavelengthCenterOfGravity.")
        self._gains = np.array([1.0 if gain is None else gain
                                for gain in numbers(characterisation, "GainOfBand")])[:, None, None]
        self._offsets = np.array([0.0 if offset is None else offset
                                  for offset in numbers(characterisation, "OffsetOfBand")])[:, None, None]
        statistics = root.findall(".//bandStatistics/bandID")
        deviations = numbers(statistics, "stdDeviation") if len(statistics) == bands else [None] * bands
        good = [deviation is None or deviation > 0 for deviation in deviations]
        notes = []
        if self.fill is None:
            declared = root.findtext(".//noDataValue")
            self.fill = float(declared) if declared is not None else None
        if not all(good):
            notes.append(f"EnMAP band statistics: {good.count(False)} bands have no variation (no data) and are "
                         f"flagged bad: {_band_ranges(good, wavelengths)}.")
        self.header = ProductHeader(kind=self.kind, wavelengths_nm=wavelengths,
                                    fwhm_nm=numbers(characterisation, "FWHMOfBand"), good_bands=good, notes=notes,
                                    **self.grid())

    @staticmethod
    def _spectral_image(metadata_xml: str) -> str:
        """The SPECTRAL_IMAGE beside the METADATA.XML: GeoTIFF, or ENVI band/line/pixel interleaved (with its .HDR),
        as the EnMAP portal delivers either."""
        folder, name = os.path.split(metadata_xml)
        prefix = name[:name.upper().index("METADATA.XML")]
        for entry in sorted(gdal.ReadDir(folder or ".") or []):
            upper = entry.upper()
            if upper.startswith((prefix + "SPECTRAL_IMAGE").upper()) and \
                    upper.endswith((".TIF", ".TIFF", ".BSQ", ".BIL", ".BIP")):
                return os.path.join(folder, entry)
        raise InputError(f"No {prefix}SPECTRAL_IMAGE (.TIF, .BSQ, .BIL or .BIP) beside {name}: the EnMAP product "
                         f"is incomplete.")

    def _to_reflectance(self, numbers_bhw):
        return numbers_bhw * self._gains + self._offsets
