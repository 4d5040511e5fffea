"""Recognition (``products.recognition``): geometries, files that are no product, and NetCDF products the core
would misread."""
import os

import numpy as np
import pytest
from osgeo import gdal

from fers_qgis.core import products
from fers_qgis.core.errors import InputError
from tests.helpers import write_raster
from tests.product_files import gdal_reads_lines_as_bands, write_emit_l2a, write_netcdf_cube, write_prisma_l2d

pytest.importorskip("netCDF4", reason="building the NetCDF test products needs netCDF4 (Debian python3-netcdf4)")
pytest.importorskip("h5py", reason="building the HDF5 test products needs h5py (Debian python3-h5py)")


def test_sensor_geometry_leaves_products_without_a_glt_as_delivered(tmp_path):
    path = write_prisma_l2d(tmp_path).path
    header, on_map = products.describe_product(path, products.SENSOR_GEOMETRY), products.describe_product(path)
    assert (header.width, header.height, header.geotransform) == (on_map.width, on_map.height, on_map.geotransform)
    assert header.notes[-1].endswith("has no geometry lookup table to undo: written as delivered.")
    with pytest.raises(InputError, match="Unknown geometry"):
        products.describe_product(path, "swath")


@pytest.fixture(params=[False, True], ids=["gdal-errors-quiet", "gdal-exceptions-on"])
def gdal_exceptions(request):
    """GDAL's global error mode either way: QGIS 3.40's Processing turns exceptions on for every plugin."""
    previous = gdal.GetUseExceptions()
    (gdal.UseExceptions if request.param else gdal.DontUseExceptions)()
    yield
    (gdal.UseExceptions if previous else gdal.DontUseExceptions)()


def test_a_plain_geotiff_is_not_a_product(tmp_path, gdal_exceptions):
    path = write_raster(tmp_path / "plain.tif", np.zeros((3, 4, 5), np.float32))
    assert products.product_kind(path) is None
    with pytest.raises(InputError, match="not a product this importer knows"):
        products.import_product(path, str(tmp_path / "out.tif"))


def test_the_core_refuses_netcdf_products_it_would_misread_and_names_the_import_command(tmp_path):
    """Before: a lone reflectance variable was scored with its downtrack lines as bands."""
    from fers_qgis.core.detection import detect_rx

    granule = write_emit_l2a(tmp_path)
    lone = write_netcdf_cube(tmp_path / "lone.nc", np.zeros((30, 12, 6), np.float32),
                             ("downtrack", "crosstrack", "bands"))
    cases = [(granule.path, "holds several variables")]
    if gdal_reads_lines_as_bands(tmp_path):  # else GDAL reads the lone variable right and it is scored as is
        cases.append((lone, "NetCDF dimension 'downtrack'"))
    for path, reason in cases:
        with pytest.raises(InputError, match=reason) as refused:
            detect_rx(path, str(tmp_path / "rx.tif"))
        assert f"qgis_process run fers:importhyperspectralproduct -- INPUT='{path}'" in str(refused.value)
    assert not os.path.exists(tmp_path / "rx.tif")
