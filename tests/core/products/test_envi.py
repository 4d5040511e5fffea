"""AVIRIS-NG / AVIRIS-3 ENVI (``products.envi``): wavelengths in nm, bbl and fill from the header."""
import numpy as np
import pytest

from fers_qgis.core import products
from tests.core.products.helpers import spectral_metadata
from tests.helpers import read_raster, same_crs
from tests.product_files import AVIRIS_GEOTRANSFORM, write_aviris_envi

pytest.importorskip("netCDF4", reason="building the NetCDF test products needs netCDF4 (Debian python3-netcdf4)")
pytest.importorskip("h5py", reason="building the HDF5 test products needs h5py (Debian python3-h5py)")


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
