"""Property-based tests of global RX through the core job: random shapes, band types and nodata patterns."""
from unittest import mock

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fers_qgis.core.detection import RxOptions, detect_rx
from fers_qgis.core.output import OUTPUT_NODATA
from fers_qgis.core.raster import MIN_BANDS_FOR_UNDECLARED_FILL
from tests.helpers import read_raster, write_raster

DTYPES = ("uint8", "int16", "uint16", "float32", "float64")
NODATA = {"uint8": 255, "int16": -32768, "uint16": 65535, "float32": -1e30, "float64": -9.2e18}


@st.composite
def rasters(draw):
    """(cube_bhw, nodata value, nodata mask): well-conditioned random spectra in a band type's range."""
    dtype = draw(st.sampled_from(DTYPES))
    bands = draw(st.integers(2, 6))
    rows, columns = draw(st.integers(3, 40)), draw(st.integers(3, 40))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    mixing = rng.uniform(0.2, 1.0, size=(bands, bands + 2))
    cube = np.tensordot(mixing, rng.uniform(0, 1, size=(bands + 2, rows, columns)), axes=1)
    cube = 10 + cube / cube.max() * (200 if dtype == "uint8" else 20000)
    cube = cube.astype(dtype)
    holes = rng.random((rows, columns)) < draw(st.sampled_from([0.0, 0.05, 0.3]))
    holes[0, 0] = False  # keep a valid pixel whatever the draw
    cube[:, holes] = NODATA[dtype]
    return cube, NODATA[dtype], holes


def run(tmp_path, name, cube, nodata, budget_mb=256):
    source = write_raster(tmp_path / f"{name}.tif", cube, nodata=nodata)
    output = str(tmp_path / f"{name}_rx.tif")
    detect_rx(source, output, RxOptions(memory_budget_mb=budget_mb))
    return output


SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(raster=rasters())
def test_geometry_and_nodata_are_carried_and_reruns_are_byte_identical(tmp_path, raster):
    cube, nodata, holes = raster
    if (~holes).sum() <= cube.shape[0] + 1:
        return  # too few valid pixels: refused, as the bad-input tests check
    first = run(tmp_path, "a", cube, nodata)
    written = read_raster(first)
    assert written.cube_bhw.shape == (1,) + cube.shape[1:]
    # Pixels with one value in every band are undeclared fill (validity's default rule).
    fill = (cube == cube[:1]).all(axis=0) & (cube.shape[0] >= MIN_BANDS_FOR_UNDECLARED_FILL)
    np.testing.assert_array_equal(written.cube_bhw[0] == OUTPUT_NODATA, holes | fill)
    second = run(tmp_path, "b", cube, nodata)
    with open(first, "rb") as one, open(second, "rb") as two:
        assert one.read() == two.read()


@SETTINGS
@given(raster=rasters(), scale=st.floats(0.01, 100), offset=st.floats(-1000, 1000))
def test_global_rx_is_invariant_to_an_affine_rescaling(tmp_path, raster, scale, offset):
    cube, nodata, holes = raster
    if (~holes).sum() <= cube.shape[0] + 1:
        return
    valid = ~holes
    rescaled = cube.astype(np.float64) * scale + offset
    rescaled[:, holes] = -9.2e18
    original = read_raster(run(tmp_path, "a", cube, nodata)).cube_bhw[0]
    transformed = read_raster(run(tmp_path, "b", rescaled, -9.2e18)).cube_bhw[0]
    np.testing.assert_allclose(transformed[valid], original[valid], rtol=1e-3, atol=1e-3 * original[valid].max())


@SETTINGS
@given(raster=rasters(), window_rows=st.integers(1, 7), chunk_rows=st.integers(1, 3))
def test_window_and_chunk_sizes_do_not_change_the_scores(tmp_path, raster, window_rows, chunk_rows):
    cube, nodata, holes = raster
    if (~holes).sum() <= cube.shape[0] + 1:
        return
    whole = read_raster(run(tmp_path, "a", cube, nodata)).cube_bhw
    width, bands = cube.shape[2], cube.shape[0]

    def small_windows(info, *_):
        return [(row, min(window_rows, info.height - row), column, min(window_rows, info.width - column))
                for row in range(0, info.height, window_rows) for column in range(0, info.width, window_rows)]

    with mock.patch("fers_qgis.core.pipeline.block_windows", small_windows), \
            mock.patch("fers_qgis.core.raster.CHUNK_BYTES", chunk_rows * width * bands * 8):
        small = read_raster(run(tmp_path, "b", cube, nodata)).cube_bhw
    np.testing.assert_allclose(small, whole, rtol=1e-5)
