"""Raster windows, band selection and wavelengths."""

import numpy as np
import pytest
from osgeo import gdal

from fers_qgis.core.errors import InputError
from fers_qgis.core.raster import BlockReader, RasterInfo, block_windows, describe_raster, select_bands
from tests.helpers import write_raster


def grid(height, width, block_height, block_width):
    return RasterInfo("grid.tif", width, height, 1, (np.dtype(np.float32),), (None,), (0, 1, 0, 0, 0, -1), "", ("",),
                      (None,), block_height, block_width)


def covered_once(windows, height, width):
    counts = np.zeros((height, width), dtype=int)
    for row, rows, column, columns in windows:
        counts[row:row + rows, column:column + columns] += 1
    return np.all(counts == 1)


def test_strips_cover_all_rows_within_budget_and_align_to_blocks():
    windows = block_windows(grid(1000, 250, 16, 250), 4, memory_budget_bytes=70_000)
    assert windows[0] == (0, 64, 0, 250)
    assert covered_once(windows, 1000, 250)
    assert block_windows(grid(5, 10**8, 256, 10**8), 10, memory_budget_bytes=1) == [
        (r, 1, 0, 10**8) for r in range(5)]  # below one row: single rows


def test_wide_rasters_are_read_one_block_row_at_a_time_in_runs_of_whole_blocks():
    info = grid(600, 3000, 256, 256)  # one block row of 3000 x 256 x 800 bytes is 614 MB
    windows = block_windows(info, 800, memory_budget_bytes=256 * 2**20)
    assert covered_once(windows, 600, 3000)
    assert {rows for _, rows, _, _ in windows} == {256, 88}
    assert all(column % 256 == 0 and row % 256 == 0 for row, _, column, _ in windows)
    assert max(rows * columns * 800 for _, rows, _, columns in windows) <= 256 * 2**20
    narrow = block_windows(grid(600, 1000, 256, 256), 800, memory_budget_bytes=256 * 2**20)
    assert max(rows * columns for _, rows, _, columns in windows) >= 0.8 * max(
        rows * columns for _, rows, _, columns in narrow)  # as large a window as the narrow raster gets
    strips = block_windows(info, 800, memory_budget_bytes=256 * 2**20, whole_rows=True)
    assert covered_once(strips, 600, 3000) and {columns for _, _, _, columns in strips} == {3000}


def test_select_bands_validates_numbers(tmp_path):
    info = describe_raster(write_raster(tmp_path / "c.tif", np.zeros((4, 3, 3), dtype=np.float32)))
    assert select_bands(info, None) == (1, 2, 3, 4)
    assert select_bands(info, [4, 2]) == (4, 2)
    with pytest.raises(InputError, match="bands 1 to 4"):
        select_bands(info, [0, 5])


def test_wavelengths_are_read_in_nanometres(tmp_path):
    path = write_raster(tmp_path / "w.tif", np.zeros((3, 2, 2), dtype=np.float32))
    dataset = gdal.Open(path, gdal.GA_Update)
    for index, (value, units) in enumerate([("0.45", "micrometers"), ("550", "nanometers"), (None, None)]):
        if value:
            dataset.GetRasterBand(index + 1).SetMetadata({"wavelength": value, "wavelength_units": units})
    dataset = None
    info = describe_raster(path)
    assert info.wavelengths_nm[0] == pytest.approx(450.0)
    assert info.wavelengths_nm[1] == pytest.approx(550.0)
    assert info.wavelengths_nm[2] is None


@pytest.mark.parametrize("units", ["Unknown", "", "wavelength"])
def test_wavelengths_without_units_are_read_by_the_magnitude_of_the_whole_list(tmp_path, units):
    """ENVI writes "wavelength units = Unknown" for headers that state none: micrometre values (up to 2.5) are
    read as micrometres, nanometre values as nanometres, by the same rule as the product importer."""
    def read(values):
        path = write_raster(tmp_path / "u.tif", np.zeros((len(values), 2, 2), dtype=np.float32))
        dataset = gdal.Open(path, gdal.GA_Update)
        for index, value in enumerate(values):
            dataset.GetRasterBand(index + 1).SetMetadata({"wavelength": str(value), "wavelength_units": units})
        dataset = None
        return describe_raster(path).wavelengths_nm

    assert read([0.4, 1.2, 2.5]) == pytest.approx((400.0, 1200.0, 2500.0))
    assert read([25.0, 400.0, 2500.0]) == pytest.approx((25.0, 400.0, 2500.0))


@pytest.mark.parametrize("dtype, nodata", [
    (gdal.GDT_UInt16, 65535), (gdal.GDT_Int16, -9.2e18), (gdal.GDT_Float32, -3.4028234663852886e38),
    (gdal.GDT_Byte, 0)])
def test_nodata_values_of_every_type_mark_invalid_pixels(tmp_path, dtype, nodata):
    cube = np.full((2, 3, 4), 7, dtype=np.float64)
    representable = dtype != gdal.GDT_Int16
    if representable:
        cube[1, 1, 2] = nodata
    path = write_raster(tmp_path / "n.tif", cube, nodata=nodata, dtype=dtype)
    info = describe_raster(path)
    _, valid = BlockReader(info, (1, 2)).read(0, 3)
    assert valid.sum() == 12 - representable
    assert valid[1, 2] == (not representable)


@pytest.mark.parametrize("numpy_type, expected", [("uint16", np.float32), ("float32", np.float32),
                                                   ("int32", np.float64), ("float64", np.float64)])
def test_tiled_windows_match_gdal_and_leave_no_blocks_in_gdal_cache(tmp_path, numpy_type, expected):
    rng = np.random.default_rng(3)
    cube = rng.integers(0, 30000, size=(5, 70, 90)).astype(numpy_type)
    path = str(tmp_path / "tiled.tif")
    dataset = gdal.GetDriverByName("GTiff").CreateCopy(path, gdal.Open(write_raster(tmp_path / "s.tif", cube)),
                                                       options=["TILED=YES", "BLOCKXSIZE=16", "BLOCKYSIZE=16"])
    dataset = None
    info = describe_raster(path)
    assert (info.block_width, info.block_height) == (16, 16)
    reader = BlockReader(info, (2, 4, 5))
    assert reader.dtype == expected
    cache_before = gdal.GetCacheUsed()  # the cache is process-wide: other tests' datasets may hold blocks
    for first_row, rows, first_column, columns in [(0, 70, 0, 90), (5, 20, 7, 41), (69, 1, 89, 1), (30, 33, 17, 16)]:
        window, valid = reader.read(first_row, rows, first_column, columns)
        np.testing.assert_array_equal(window, cube[[1, 3, 4], first_row:first_row + rows,
                                                   first_column:first_column + columns])
        assert valid.all() and gdal.GetCacheUsed() <= cache_before
