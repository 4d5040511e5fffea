"""PRISMA L2D (``products.prisma``): both cubes scaled, merged in ascending wavelength order and georeferenced."""
import numpy as np
import pytest

from fers_qgis.core import products
from tests.core.products.helpers import spectral_metadata
from tests.helpers import read_raster, same_crs
from tests.product_files import write_prisma_l2d

pytest.importorskip("netCDF4", reason="building the NetCDF test products needs netCDF4 (Debian python3-netcdf4)")
pytest.importorskip("h5py", reason="building the HDF5 test products needs h5py (Debian python3-h5py)")


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
