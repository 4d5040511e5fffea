"""Import hyperspectral product: each format written with its published structure, imported, and checked value by
value (band order, wavelengths, bad bands, georeferencing, fill)."""
import os

import numpy as np
import pytest
from osgeo import gdal

from fers_qgis.core import products
from fers_qgis.core.errors import Cancelled, InputError
from fers_qgis.core.progress import Progress
from fers_qgis.core.raster import describe_raster
from tests.helpers import TEST_EPSG, TEST_GEOTRANSFORM, read_raster, same_crs, write_raster
from tests.product_files import (AVIRIS_GEOTRANSFORM, EMIT_GEOTRANSFORM, ENMAP_GEOTRANSFORM,
                                 gdal_reads_lines_as_bands, write_aviris_envi, write_cf_cube, write_emit_l2a,
                                 write_emit_l2a_mask, write_enmap_l2a, write_netcdf_cube, write_prisma_l2d)

pytest.importorskip("netCDF4", reason="building the NetCDF test products needs netCDF4 (Debian python3-netcdf4)")
pytest.importorskip("h5py", reason="building the HDF5 test products needs h5py (Debian python3-h5py)")


def envi_list(dataset, key):
    text = dataset.GetMetadataItem(key, "ENVI")
    return [float(value) for value in text.strip("{}").split(",")]


def spectral_metadata(path):
    """(wavelengths, fwhm, bbl) from the ENVI domain, and each band's own wavelength / bbl items."""
    dataset = gdal.Open(path)
    assert dataset.GetMetadataItem("wavelength_units", "ENVI") == "Nanometers"
    per_band = [dataset.GetRasterBand(index + 1).GetMetadata() for index in range(dataset.RasterCount)]
    assert [float(band["wavelength"]) for band in per_band] == pytest.approx(envi_list(dataset, "wavelength"))
    assert [int(band["bbl"]) for band in per_band] == envi_list(dataset, "bbl")
    return envi_list(dataset, "wavelength"), envi_list(dataset, "fwhm"), envi_list(dataset, "bbl")


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


def test_sensor_geometry_leaves_products_without_a_glt_as_delivered(tmp_path):
    path = write_prisma_l2d(tmp_path).path
    header, on_map = products.describe_product(path, products.SENSOR_GEOMETRY), products.describe_product(path)
    assert (header.width, header.height, header.geotransform) == (on_map.width, on_map.height, on_map.geotransform)
    assert header.notes[-1].endswith("has no geometry lookup table to undo: written as delivered.")
    with pytest.raises(InputError, match="Unknown geometry"):
        products.describe_product(path, "swath")


def test_prisma_cubes_are_scaled_merged_in_ascending_wavelength_order_and_georeferenced(tmp_path):
    product = write_prisma_l2d(tmp_path)
    assert products.product_kind(product.path) == products.PRISMA_L2D
    output = str(tmp_path / "prisma.tif")
    summary = products.import_product(product.path, output)

    sources = [(wavelength, product.vnir_rbc, index, product.vnir_scale)
               for index, wavelength in enumerate(product.vnir_wavelengths) if wavelength > 0]
    sources += [(wavelength, product.swir_rbc, index, product.swir_scale)
                for index, wavelength in enumerate(product.swir_wavelengths) if wavelength > 0]
    sources.sort(key=lambda source: source[0])
    expected = np.stack([low + cube[:, index, :].astype(np.float64) * (high - low) / 65535
                         for _, cube, index, (low, high) in sources]).astype(np.float32)
    expected[:, 0, 0] = -9999.0
    written = read_raster(output)
    np.testing.assert_allclose(written.cube_bhw, expected, rtol=1e-6)
    wavelengths, fwhm, bbl = spectral_metadata(output)
    assert wavelengths == [source[0] for source in sources]
    assert wavelengths == sorted(wavelengths)
    # The SWIR band at 940 nm lies inside the VNIR range (up to 1010 nm), the one at 2497 nm is zero everywhere:
    # flagged, not dropped.
    assert bbl == [0.0 if wavelength in (940.0, 2497.0) else 1.0 for wavelength in wavelengths]
    assert summary.bad_bands == (wavelengths.index(940.0) + 1, wavelengths.index(2497.0) + 1)
    west, north = product.upper_left
    size = product.pixel_size
    assert written.geotransform == pytest.approx((west - size / 2, size, 0, north + size / 2, 0, -size))
    assert same_crs(written.projection_wkt, 32633)


def test_enmap_numbers_become_reflectance_with_gains_offsets_and_the_empty_band_is_flagged(tmp_path):
    product = write_enmap_l2a(tmp_path)
    output = str(tmp_path / "enmap.tif")
    for chosen in (product.metadata_xml, product.spectral_image):
        assert products.product_kind(chosen) == products.ENMAP_L2A
    summary = products.import_product(product.metadata_xml, output)

    written = read_raster(output)
    expected = (product.numbers_bhw * product.gains[:, None, None] + product.offsets[:, None, None]).astype(
        np.float32)
    expected[product.numbers_bhw == -32768] = -9999.0
    np.testing.assert_allclose(written.cube_bhw, expected, rtol=1e-6)
    wavelengths, fwhm, bbl = spectral_metadata(output)
    assert wavelengths == pytest.approx(np.round(product.wavelengths, 2))
    assert fwhm == pytest.approx(6.5 + np.arange(len(wavelengths)))
    assert bbl == [0.0 if index == product.dead_band else 1.0 for index in range(len(wavelengths))]
    assert summary.bad_bands == (product.dead_band + 1,)
    assert written.geotransform == pytest.approx(ENMAP_GEOTRANSFORM)
    assert same_crs(written.projection_wkt, 32633)


@pytest.mark.parametrize("delivery", ["ENVI image", "ZIP", "ZIP in a ZIP"])
def test_enmap_is_read_as_the_portal_delivers_it(tmp_path, delivery):
    """The same product imported from its folder (GeoTIFF image), with an ENVI BSQ image, and from the delivery
    ZIP (in place, also when the portal's ZIP holds the product's own ZIP)."""
    import zipfile
    reference_folder, folder = tmp_path / "reference", tmp_path / "product"
    reference_folder.mkdir()
    folder.mkdir()
    reference = write_enmap_l2a(reference_folder)
    expected = str(tmp_path / "expected.tif")
    products.import_product(reference.metadata_xml, expected)
    product = write_enmap_l2a(folder, image_format="ENVI" if delivery == "ENVI image" else "GTiff")
    given = product.metadata_xml
    if delivery != "ENVI image":
        given = str(tmp_path / "delivery.ZIP")
        with zipfile.ZipFile(given, "w") as archive:
            for name in os.listdir(folder):
                archive.write(folder / name, f"{os.path.basename(str(folder))}_L2A/{name}")
        if delivery == "ZIP in a ZIP":
            os.replace(given, str(tmp_path / "inner.ZIP"))
            with zipfile.ZipFile(given, "w") as archive:
                archive.write(tmp_path / "inner.ZIP", "order_0001/product.ZIP")
    output = str(tmp_path / "imported.tif")
    products.import_product(given, output)
    np.testing.assert_array_equal(read_raster(output).cube_bhw, read_raster(expected).cube_bhw)
    assert spectral_metadata(output) == spectral_metadata(expected)
    assert read_raster(output).geotransform == pytest.approx(ENMAP_GEOTRANSFORM)


def test_a_zip_without_one_enmap_product_is_refused_with_what_it_holds(tmp_path):
    import zipfile
    given = str(tmp_path / "photos.zip")
    with zipfile.ZipFile(given, "w") as archive:
        archive.writestr("readme.txt", "no product here")
    with pytest.raises(InputError, match="holds no EnMAP METADATA.XML"):
        products.describe_product(given)


@pytest.mark.parametrize("micrometres", [False, True])
@pytest.mark.parametrize("declare_fill", [True, False])
def test_aviris_envi_wavelengths_in_nm_bbl_and_fill(tmp_path, micrometres, declare_fill):
    path, cube, bbl, wavelengths_nm = write_aviris_envi(tmp_path, micrometres=micrometres,
                                                        declare_fill=declare_fill)
    output = str(tmp_path / "aviris.tif")
    # The header is what a user often picks in a file dialog.
    assert products.product_kind(path + ".hdr") == products.ENVI_REFLECTANCE
    summary = products.import_product(path + ".hdr", output)

    written = read_raster(output)
    np.testing.assert_array_equal(written.cube_bhw, cube)
    assert summary.valid_pixels == cube.shape[1] * cube.shape[2] - 1  # the -9999 pixel, declared or not
    wavelengths, fwhm, written_bbl = spectral_metadata(output)
    assert wavelengths == pytest.approx(wavelengths_nm, abs=1e-3)
    assert fwhm == pytest.approx([5.0] * len(wavelengths))
    assert written_bbl == list(bbl)
    assert written.geotransform == pytest.approx(AVIRIS_GEOTRANSFORM)
    assert same_crs(written.projection_wkt, 32611)


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


def test_a_cancelled_import_leaves_no_file(tmp_path, monkeypatch):
    granule = write_emit_l2a(tmp_path)
    monkeypatch.setattr(products.reader, "BLOCK_BYTES", 10 * 12 * 4 * 3)

    class CancelAfterFirstBlock(Progress):
        blocks = 0

        def set_fraction(self, fraction):
            self.blocks += 1

        def is_cancelled(self):
            return self.blocks >= 1

    with pytest.raises(Cancelled):
        products.import_product(granule.path, str(tmp_path / "emit.tif"), CancelAfterFirstBlock())
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(granule.path)]


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
