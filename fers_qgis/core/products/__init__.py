"""Import hyperspectral sensor products into a GeoTIFF that every FERS algorithm (and EnMAP-Box) reads.

Products as delivered are not plain image cubes, and each sensor family has its reader module here:

- ``emit``: EMIT L2A reflectance and mask, NetCDF swaths with a geometry lookup table (GLT) to their map grid,
  written on that grid or as recorded (sensor geometry, placed by ground control points);
- ``prisma``: PRISMA L2D, an HDF-EOS5 file with VNIR and SWIR cubes in descending wavelength order, 16-bit scaled;
- ``enmap``: EnMAP L2A, a GeoTIFF (or ENVI) image whose wavelengths, gains and band statistics live in
  METADATA.XML, from its folder or its delivery ZIP;
- ``envi``: AVIRIS-NG / AVIRIS-3 ENVI files, wavelengths (nm or um) and bad-band lists in their header;
- ``netcdf``: any NetCDF / HDF5 file with one reflectance cube, along the axes its dimensions say.

Beside them: ``reader``, the reader interface (``ProductReader``: a product's ``header``, a ``ProductHeader`` with
its size, wavelengths, FWHM, bad-band flags and georeferencing, a geotransform with its CRS or ground control
points; its cube a block of rows at a time with its valid pixels, ``read_rows``; ``close``) and the helpers readers
share; ``multidim``, NetCDF and HDF5 through GDAL's multidimensional API (what the EMIT, PRISMA and NetCDF readers
read with); ``recognition``, which reader opens a path; ``writer``, the import itself, block by block into a tiled
Float32 GeoTIFF with each band's wavelength, FWHM and bad-band flag per band and as ENVI metadata lists.

Adding a sensor = one new module here implementing the interface (``reader.ProductReader``) + registering it in
recognition (``recognition.READERS`` and the test that recognises its files) + its test in tests/core/products/.

Callers use this package's names, as ``from fers_qgis.core import products; products.import_product(...)``.
"""
from .emit import EMIT_L2A, EMIT_L2A_MASK, GCPS_PER_AXIS, EmitL2A, EmitL2AMask
from .enmap import ENMAP_L2A, EnmapL2A
from .envi import ENVI_REFLECTANCE, EnviReflectance
from .multidim import BAND, X, Y
from .netcdf import NETCDF_CUBE, NetcdfCube
from .prisma import PRISMA_L2D, PrismaL2D
from .reader import (GEOMETRIES, MAP_GRID, PRODUCT_FILL, SCENE_GEOMETRY, SENSOR_GEOMETRY, ProductHeader,
                     ProductReader)
from .recognition import (PRODUCT_NAMES, READERS, container_file, describe_product, describe_scene_product,
                          product_kind)
from .writer import ImportSummary, import_product, import_scene

__all__ = [
    "import_product", "import_scene", "describe_product", "describe_scene_product", "container_file",
    "product_kind", "ImportSummary", "ProductHeader", "ProductReader", "READERS", "PRODUCT_NAMES",
    "MAP_GRID", "SENSOR_GEOMETRY", "GEOMETRIES", "SCENE_GEOMETRY", "PRODUCT_FILL", "GCPS_PER_AXIS",
    "EMIT_L2A", "EMIT_L2A_MASK", "ENMAP_L2A", "PRISMA_L2D", "ENVI_REFLECTANCE", "NETCDF_CUBE",
    "EmitL2A", "EmitL2AMask", "EnmapL2A", "PrismaL2D", "EnviReflectance", "NetcdfCube", "BAND", "X", "Y",
]
