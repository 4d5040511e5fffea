"""EnMAP L2A (``products.enmap``): gains and offsets, empty bands, and the product as the portal delivers it."""
import os

import numpy as np
import pytest

from fers_qgis.core import products
from fers_qgis.core.errors import InputError
from tests.core.products.helpers import spectral_metadata
from tests.helpers import read_raster, same_crs
from tests.product_files import ENMAP_GEOTRANSFORM, write_enmap_l2a

pytest.importorskip("netCDF4", reason="building the NetCDF test products needs netCDF4 (Debian python3-netcdf4)")
pytest.importorskip("h5py", reason="building the HDF5 test products needs h5py (Debian python3-h5py)")


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
