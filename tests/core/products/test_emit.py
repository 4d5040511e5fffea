"""EMIT L2A (``products.emit``): the reflectance orthorectified through its GLT or kept in sensor geometry, and the mask
file as a valid-pixel mask on the same grid."""
import numpy as np
import pytest
from osgeo import gdal

from fers_qgis.core import products
from fers_qgis.core.raster import describe_raster
from tests.core.products.helpers import spectral_metadata
from tests.helpers import read_raster, same_crs
from tests.product_files import EMIT_GEOTRANSFORM, write_emit_l2a, write_emit_l2a_mask

pytest.importorskip("netCDF4", reason="building the NetCDF test products needs netCDF4 (Debian python3-netcdf4)")
pytest.importorskip("h5py", reason="building the HDF5 test products needs h5py (Debian python3-h5py)")


def test_emit_is_orthorectified_with_its_glt_onto_the_products_map_grid(tmp_path, monkeypatch):
    granule = write_emit_l2a(tmp_path)
    # Small blocks: several output blocks, each reading its swath lines in several pieces.
    monkeypatch.setattr(products.reader, "BLOCK_BYTES", 10 * 12 * 4 * 3)
    assert products.product_kind(granule.path) == products.EMIT_L2A
    output = str(tmp_path / "emit.tif")
    summary = products.import_product(granule.path, output)

    written = read_raster(output)
    expected = granule.expected_bhw()
    assert written.cube_bhw.shape == expected.shape
    np.testing.assert_array_equal(written.cube_bhw, expected)
    assert written.geotransform == pytest.approx(EMIT_GEOTRANSFORM)
    assert same_crs(written.projection_wkt, 4326)
    assert set(written.nodata) == {-9999.0}
    wavelengths, fwhm, bbl = spectral_metadata(output)
    assert wavelengths == pytest.approx(granule.wavelengths)
    assert fwhm == pytest.approx(granule.fwhm)
    assert bbl == list(granule.good_wavelengths)
    assert summary.bad_bands == tuple(np.flatnonzero(granule.good_wavelengths == 0) + 1)
    mapped = (granule.glt_x > 0).sum()
    assert summary.valid_pixels == mapped - (expected[0][granule.glt_x > 0] == -9999).sum()
    # What every FERS algorithm then reads: wavelengths in nm.
    assert describe_raster(output).wavelengths_nm == pytest.approx(tuple(granule.wavelengths))


def test_emit_in_sensor_geometry_keeps_every_swath_pixel_once_placed_by_its_lat_lon(tmp_path):
    """The swath as recorded: no fill, no repeated pixel; GCPs from location/lat and lon put each pixel where the
    GLT puts it on the map grid (within the GLT's own nearest-pixel rounding), and detection outputs keep them."""
    from fers_qgis.core.detection import detect_rx
    granule = write_emit_l2a(tmp_path)
    output = str(tmp_path / "emit_sensor.tif")
    summary = products.import_product(granule.path, output, geometry=products.SENSOR_GEOMETRY)

    written = read_raster(output)
    np.testing.assert_array_equal(written.cube_bhw, granule.swath_dcb.transpose(2, 0, 1))
    assert summary.valid_pixels == granule.swath_dcb[..., 0].size - 1  # the one fill pixel inside the swath
    assert spectral_metadata(output)[2] == list(granule.good_wavelengths)
    dataset = gdal.Open(output)
    assert dataset.GetGCPCount() >= 100 and same_crs(dataset.GetGCPProjection(), 4326)
    to_map = gdal.Transformer(dataset, None, ["METHOD=GCP_POLYNOMIAL"])
    downtrack, crosstrack = granule.swath_dcb.shape[:2]
    rows, columns = np.nonzero(granule.glt_x > 0)
    for row, column in zip(rows, columns):
        line, sample = granule.glt_y[row, column] - 1, granule.glt_x[row, column] - 1
        _, (lon, lat, _) = to_map.TransformPoint(0, sample + 0.5, line + 0.5)
        map_column = (lon - EMIT_GEOTRANSFORM[0]) / EMIT_GEOTRANSFORM[1] - 0.5
        map_row = (lat - EMIT_GEOTRANSFORM[3]) / EMIT_GEOTRANSFORM[5] - 0.5
        assert np.hypot(map_row - row, map_column - column) <= 0.5 * np.sqrt(2) + 1e-6
    scores = str(tmp_path / "scores.tif")
    detect_rx(output, scores)
    assert gdal.Open(scores).GetGCPCount() == dataset.GetGCPCount()
    assert read_raster(scores).cube_bhw.shape[1:] == (downtrack, crosstrack)


@pytest.mark.parametrize("geometry", [products.MAP_GRID, products.SENSOR_GEOMETRY])
@pytest.mark.parametrize("named", [True, False])
def test_the_emit_mask_file_becomes_a_valid_pixel_mask_on_the_reflectance_grid(tmp_path, geometry, named):
    """Flagged (aggregate flag) and fill pixels 0, the rest 1, on the grid the reflectance import writes; RX given
    it as mask scores only the usable pixels."""
    from fers_qgis.core.detection import detect_rx
    granule = write_emit_l2a(tmp_path)
    mask_file, usable_dc = write_emit_l2a_mask(tmp_path, granule, named=named)
    assert products.product_kind(mask_file) == products.EMIT_L2A_MASK
    reflectance, mask = str(tmp_path / "rfl.tif"), str(tmp_path / "mask.tif")
    products.import_product(granule.path, reflectance, geometry=geometry)
    summary = products.import_product(mask_file, mask, geometry=geometry)

    written = read_raster(mask)
    if geometry == products.SENSOR_GEOMETRY:
        expected = usable_dc
    else:
        mapped = granule.glt_x > 0
        expected = np.zeros(granule.glt_x.shape, dtype=bool)
        expected[mapped] = usable_dc[granule.glt_y[mapped] - 1, granule.glt_x[mapped] - 1]
    np.testing.assert_array_equal(written.cube_bhw[0], expected.astype(np.uint8))
    assert written.data_types == ("Byte",) and summary.valid_pixels == expected.sum()
    assert (written.geotransform, written.projection_wkt) == (read_raster(reflectance).geotransform,
                                                              read_raster(reflectance).projection_wkt)
    scores = str(tmp_path / "scores.tif")
    detect_rx(reflectance, scores, mask_path=mask)
    reflectance_valid = read_raster(reflectance).cube_bhw[0] != -9999.0
    assert ((read_raster(scores).cube_bhw[0] != -9999.0) == (expected & reflectance_valid)).all()
