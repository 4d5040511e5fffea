"""NetCDF / HDF5 cubes (``products.netcdf``, ``products.multidim``): read along the axes their dimensions say,
north up and georeferenced, or refused naming the dimensions."""
import os

import numpy as np
import pytest

from fers_qgis.core import products
from fers_qgis.core.errors import InputError
from fers_qgis.core.raster import describe_raster
from tests.helpers import TEST_EPSG, TEST_GEOTRANSFORM, read_raster, same_crs
from tests.product_files import write_cf_cube, write_netcdf_cube

pytest.importorskip("netCDF4", reason="building the NetCDF test products needs netCDF4 (Debian python3-netcdf4)")
pytest.importorskip("h5py", reason="building the HDF5 test products needs h5py (Debian python3-h5py)")


def test_a_netcdf_cube_is_read_along_its_named_band_axis(tmp_path):
    cube_dcb = np.random.default_rng(1).uniform(0, 1, (7, 5, 4)).astype(np.float32)
    path = write_netcdf_cube(tmp_path / "only_reflectance.nc", cube_dcb, ("downtrack", "crosstrack", "bands"),
                             wavelengths=[0.45, 0.55, 0.65, 0.85])
    assert products.product_kind(path) == products.NETCDF_CUBE
    output = str(tmp_path / "cube.tif")
    products.import_product(path, output)
    written = read_raster(output)
    assert written.cube_bhw.shape == (4, 7, 5)  # bands, downtrack, crosstrack: not 7 "bands" of 5 x 4
    np.testing.assert_array_equal(written.cube_bhw, cube_dcb.transpose(2, 0, 1))
    assert describe_raster(output).wavelengths_nm == pytest.approx((450.0, 550.0, 650.0, 850.0))


@pytest.mark.parametrize("order", [("band", "y", "x"), ("y", "x", "band"), ("band", "x", "y"), ("x", "band", "y")])
@pytest.mark.parametrize("north_up", [True, False])
def test_a_cf_netcdf_cube_is_read_in_its_dimension_order_north_up_and_georeferenced(order, north_up, tmp_path):
    # Before: (band, x, y) came out transposed, rows stored south to north upside down, and no georeferencing.
    cube_bhw = np.random.default_rng(2).uniform(0, 1, (5, 7, 6)).astype(np.float32)
    path = write_cf_cube(tmp_path / "cube.nc", cube_bhw, order, north_up=north_up)
    output = str(tmp_path / "cube.tif")
    summary = products.import_product(path, output)
    written = read_raster(output)
    np.testing.assert_array_equal(written.cube_bhw, cube_bhw)
    assert written.geotransform == pytest.approx(TEST_GEOTRANSFORM)
    assert same_crs(written.projection_wkt, TEST_EPSG)
    assert describe_raster(output).wavelengths_nm == pytest.approx((400.0, 410.0, 420.0, 430.0, 440.0))
    assert ("rows stored south to north are written north up" in " ".join(summary.notes)) == (not north_up)


def test_a_lat_lon_netcdf_cube_is_georeferenced_in_wgs84(tmp_path):
    cube_bhw = np.random.default_rng(3).uniform(0, 1, (4, 6, 5)).astype(np.float32)
    path = write_cf_cube(tmp_path / "cube.nc", cube_bhw, ("band", "y", "x"), north_up=False, lon_lat=True)
    output = str(tmp_path / "cube.tif")
    products.import_product(path, output)
    written = read_raster(output)
    np.testing.assert_array_equal(written.cube_bhw, cube_bhw)
    assert written.geotransform == pytest.approx((12.0, 1e-3, 0, 45.0, 0, -1e-3))
    assert same_crs(written.projection_wkt, 4326)


def test_a_cube_whose_dimensions_decide_no_order_is_refused_naming_them(tmp_path):
    path = write_cf_cube(tmp_path / "cube.nc", np.zeros((4, 6, 5), np.float32), ("band", "y", "x"), named=False)
    with pytest.raises(InputError, match=r"reflectance\(d0, d1, d2\) .*'d0': says nothing, 'd1': says nothing"):
        products.import_product(path, str(tmp_path / "out.tif"))
    assert not os.path.exists(tmp_path / "out.tif")


def test_a_cube_without_a_named_band_axis_is_refused_not_guessed(tmp_path):
    path = write_netcdf_cube(tmp_path / "unnamed.nc", np.zeros((6, 5, 4), np.float32), ("a", "b", "c"))
    assert products.product_kind(path) is None
    with pytest.raises(InputError, match="which axis holds the bands is unknown"):
        products.import_product(path, str(tmp_path / "out.tif"))
    assert not os.path.exists(tmp_path / "out.tif")
