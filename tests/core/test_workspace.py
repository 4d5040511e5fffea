"""Temporary rasters: what a pass writes, in any windows and row pieces, is what the next pass reads."""
import numpy as np
import pytest

from fers_qgis.core import workspace
from fers_qgis.core.errors import InputError
from fers_qgis.core.workspace import RasterFile, RowPiece, TempRaster

HEIGHT, WIDTH, BANDS = 11, 13, 3


def _scene(seed=0):
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((BANDS, HEIGHT, WIDTH))
    valid = rng.random((HEIGHT, WIDTH)) > 0.2
    return values, valid


def _write(path, values, valid, windows):
    """The finished TempRaster of ``values`` written window by window."""
    raster = TempRaster(str(path), WIDTH, values.shape[1], BANDS)
    for row, rows, column, columns in windows:
        block = (slice(None), slice(row, row + rows), slice(column, column + columns))
        raster.write(row, values[block], valid[block[1:]], column)
    return raster.finish()


# Whole-width strips, 2-D blocks narrower than the raster, and single pixels: one code path each.
WINDOWS = {"strips": [(0, 4, 0, WIDTH), (4, 7, 0, WIDTH)],
           "blocks": [(row, min(3, HEIGHT - row), column, min(5, WIDTH - column))
                      for row in range(0, HEIGHT, 3) for column in range(0, WIDTH, 5)],
           "pixels": [(row, 1, column, 1) for row in range(HEIGHT) for column in range(WIDTH)]}


def _assert_reads_back(raster, values, valid, windows):
    """Each window reads the written values, invalid pixels zeroed, and the valid pixels."""
    reader = raster.reader()
    try:
        for row, rows, column, columns in windows:
            cube, valid_hw = reader.read(row, rows, column, columns)
            window = (slice(row, row + rows), slice(column, column + columns))
            np.testing.assert_array_equal(valid_hw, valid[window])
            np.testing.assert_array_equal(
                cube, np.where(valid[window], values[(slice(None),) + window], 0.0).astype(np.float32))
    finally:
        reader.close()


@pytest.mark.parametrize("positioned", [True, False], ids=["positioned-io", "seek-io"])
@pytest.mark.parametrize("layout", sorted(WINDOWS))
def test_windows_read_back_what_was_written_with_invalid_pixels_zeroed(tmp_path, monkeypatch, layout, positioned):
    monkeypatch.setattr(workspace, "_POSITIONED_IO", positioned and workspace._POSITIONED_IO)
    values, valid = _scene()
    _assert_reads_back(_write(tmp_path / "cube.f32", values, valid, WINDOWS[layout]), values, valid,
                       [(0, HEIGHT, 0, WIDTH), (2, 5, 0, WIDTH), (3, 6, 4, 7), (10, 1, 12, 1)])


def test_row_pieces_read_as_one_raster(tmp_path):
    values, valid = _scene(1)
    pieces = tuple(RowPiece(_write(tmp_path / f"rows{first}.f32", values[:, first:stop], valid[first:stop],
                                   [(0, stop - first, 0, WIDTH)]).pieces[0].path, first, stop - first)
                   for first, stop in [(0, 4), (4, 9), (9, HEIGHT)])
    _assert_reads_back(RasterFile(pieces, WIDTH, HEIGHT, BANDS), values, valid,
                       [(0, HEIGHT, 0, WIDTH), (3, 7, 2, 9), (8, 2, 0, WIDTH)])


def test_a_pixel_with_a_non_finite_band_reads_as_invalid(tmp_path):
    values, valid = np.ones((BANDS, HEIGHT, WIDTH)), np.ones((HEIGHT, WIDTH), dtype=bool)
    values[1, 2, 3], values[2, 5, 6] = np.inf, np.nan
    reader = _write(tmp_path / "cube.f32", values, valid, WINDOWS["strips"]).reader()
    try:
        cube, valid_hw = reader.read(0, HEIGHT)
    finally:
        reader.close()
    assert not valid_hw[2, 3] and not valid_hw[5, 6] and valid_hw.sum() == HEIGHT * WIDTH - 2
    assert np.all(cube[:, 2, 3] == 0) and np.all(np.isfinite(cube))


def test_value_range_is_that_of_the_valid_values(tmp_path):
    values, valid = _scene(2)
    raster = _write(tmp_path / "cube.f32", values, valid, WINDOWS["blocks"])
    valid_values = values[:, valid].astype(np.float32)
    assert raster.value_range(budget=64) == (float(valid_values.min()), float(valid_values.max()))


def test_a_truncated_file_is_a_clear_error(tmp_path):
    values, valid = _scene(3)
    raster = _write(tmp_path / "cube.f32", values, valid, WINDOWS["strips"])
    with open(raster.pieces[0].path, "r+b") as handle:
        handle.truncate(100)
    reader = raster.reader()
    try:
        with pytest.raises(InputError, match="truncated"):
            reader.read(0, HEIGHT)
    finally:
        reader.close()
