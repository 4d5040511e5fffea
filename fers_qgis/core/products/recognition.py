"""Which reader opens a path: NetCDF / HDF5 files by their content (PRISMA's VNIR cube, EMIT's GLT, else a CF
cube), other files by what lies beside them (EnMAP's METADATA.XML, an ENVI header with wavelengths).

A new sensor is registered here: its reader in ``READERS`` (which names its product in ``PRODUCT_NAMES``) and the
test that recognises its files in ``_recognise_product`` or, for NetCDF / HDF5, ``_recognise_container``.
"""
import os
import re
from typing import Optional

from osgeo import gdal

from ..errors import InputError
from ..raster import gdal_errors_as_exceptions
from .emit import EMIT_L2A_MASK, EmitL2A, EmitL2AMask, EmitSwath
from .enmap import EnmapL2A, enmap_metadata_xml, zipped_enmap_metadata_xml
from .envi import EnviReflectance, envi_data_file
from .multidim import find_array
from .netcdf import NetcdfCube
from .prisma import PRISMA_CUBES, PrismaL2D
from .reader import GEOMETRIES, MAP_GRID, SCENE_GEOMETRY, SENSOR_GEOMETRY, ProductHeader, ProductReader

# Every reader, and the name each product's kind goes by in the log.
READERS = (EmitL2A, EmitL2AMask, EnmapL2A, PrismaL2D, EnviReflectance, NetcdfCube)
PRODUCT_NAMES = {reader.kind: reader.name for reader in READERS}

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_NETCDF_SIGNATURES = (b"CDF\x01", b"CDF\x02", b"CDF\x05")
_SUBDATASET = re.compile(r'^(?:NETCDF|HDF5):"?(?P<file>.+?)"?:(?P<variable>[^:]+)$', re.IGNORECASE)


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
    """Which product ``path`` is (a key of PRODUCT_NAMES), or None when it is none this package imports."""
    try:
        return describe_product(path).kind
    except InputError:
        return None


def describe_product(path: str, geometry: str = MAP_GRID) -> ProductHeader:
    """The raster an import of ``path`` will write (grid, bands, decisions), from metadata alone; InputError when
    ``path`` is no product this package imports, saying why."""
    product = open_product(path, geometry)
    product.close()
    return product.header


def open_scene_product(path: str) -> ProductReader:
    """A product given to a detector as its scene, opened in SCENE_GEOMETRY: a mask file is refused, saying where
    it goes instead."""
    product = open_product(path, SCENE_GEOMETRY)
    if product.kind == EMIT_L2A_MASK:
        product.close()
        raise InputError(f"{os.path.basename(path)} is EMIT's mask file, not a scene: import it (Import "
                         f"hyperspectral product) and give the result as the valid-pixel mask of its reflectance.")
    return product


def describe_scene_product(path: str) -> ProductHeader:
    """describe_product for a product given to a detector as its scene (what ``import_scene`` will write)."""
    product = open_scene_product(path)
    product.close()
    return product.header


def open_product(path: str, geometry: str = MAP_GRID) -> ProductReader:
    """Recognise and open a product, or raise InputError saying what ``path`` is and why it is not one."""
    if geometry not in GEOMETRIES:
        raise InputError(f"Unknown geometry {geometry!r}; choose one of {', '.join(GEOMETRIES)}.")
    product = _recognise_product(path, geometry)
    if geometry == SENSOR_GEOMETRY and not isinstance(product, EmitSwath):
        product.header.notes.append(f"The {PRODUCT_NAMES[product.kind]} has no geometry lookup table to undo: "
                                    f"written as delivered.")
    return product


def _recognise_product(path: str, geometry: str) -> ProductReader:
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
        return EnmapL2A(zipped_enmap_metadata_xml(path))
    metadata_xml = enmap_metadata_xml(path)
    if metadata_xml:
        return EnmapL2A(metadata_xml)
    data_path = envi_data_file(path)
    if data_path:
        return EnviReflectance(data_path)
    raise InputError(
        f"{os.path.basename(path)} is not a product this importer knows: EMIT L2A (.nc), PRISMA L2D (.he5), "
        f"EnMAP L2A (its ZIP as delivered, METADATA.XML, or SPECTRAL_IMAGE with METADATA.XML beside it), an ENVI "
        f"raster with wavelengths (AVIRIS-NG, AVIRIS-3), or a NetCDF/HDF5 file with one reflectance cube.")


def _open_container(container: str, given_path: str, geometry: str) -> ProductReader:
    """NetCDF / HDF5: EMIT, PRISMA, or a generic cube with a named band dimension."""
    with gdal_errors_as_exceptions():
        try:
            return _recognise_container(container, given_path, geometry)
        except RuntimeError as error:
            raise InputError(f"Cannot read {os.path.basename(container)} as NetCDF/HDF5: {error}") from error


def _recognise_container(container: str, given_path: str, geometry: str) -> ProductReader:
    dataset = gdal.OpenEx(container, gdal.OF_MULTIDIM_RASTER)
    root = dataset.GetRootGroup()
    if find_array(root, PRISMA_CUBES.format("VNIR")) is not None:
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
