"""Global and local RX in the core: streaming agrees with in-memory references, on small and on real scenes."""
import os
from unittest import mock

import numpy as np
import pytest
from osgeo import gdal

from fers_qgis.core import rx
from fers_qgis.core.detection import RxOptions, detect_rx
from fers_qgis.core.errors import Cancelled, InputError
from fers_qgis.core.metrics import roc_auc
from fers_qgis.core.progress import Progress
from fers_qgis.core.output import OUTPUT_NODATA
from tests.helpers import EVAL_DIR, EVAL_NAMES, EVAL_SCENES, write_raster

# rx_auc column of ../shared/data/README.md
PUBLISHED_RX_AUC = {
    "sandiego_planes": 0.9403, "texas_coast_2": 0.9952, "pavia_beach_4": 0.9887, "pavia_centre": 0.9982,
    "hydice_urban": 0.9763, "hydice_urban_ii": 0.9272, "muufl_targets": 0.6020,
}


def reference_rx(cube_bhw: np.ndarray) -> np.ndarray:
    """Direct in-memory global RX: float64, unbiased covariance, numpy pseudo-inverse, as the published RX_np."""
    pixels = cube_bhw.reshape(cube_bhw.shape[0], -1).T.astype(np.float64)
    centred = pixels - pixels.mean(axis=0)
    inverse = np.linalg.pinv(np.cov(pixels, rowvar=False))
    return np.einsum("nc,cd,nd->n", centred, inverse, centred).reshape(cube_bhw.shape[1:])


def read(path):
    dataset = gdal.Open(path)
    return dataset.GetRasterBand(1).ReadAsArray().astype(np.float64)


def correlated_cube(rng, bands=12, rows=37, columns=29):
    mixing = rng.normal(size=(bands, bands))
    return np.einsum("cd,dhw->chw", mixing, rng.normal(size=(bands, rows, columns))) + 100.0


def test_streaming_statistics_match_numpy_for_any_block_split():
    rng = np.random.default_rng(1)
    pixels = rng.normal(size=(1000, 7)) * 1e3 + 5e4  # large offset: naive sums of squares would cancel
    statistics = rx.BackgroundStatistics(7)
    for chunk in np.array_split(pixels, [3, 10, 400, 401, 999]):
        statistics.add(chunk)
    np.testing.assert_allclose(statistics.mean, pixels.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(statistics.covariance, np.cov(pixels, rowvar=False), rtol=1e-9)


def test_statistics_of_blocks_merged_as_a_tree_equal_one_pass():
    rng = np.random.default_rng(2)
    pixels = rng.normal(size=(1000, 7)) * 1e3 + 5e4
    blocks = []
    for chunk in np.array_split(pixels, [3, 10, 400, 401, 999, 999]):  # an empty block among them
        blocks.append(rx.BackgroundStatistics(7))
        blocks[-1].add(chunk)
    while len(blocks) > 1:
        blocks = [pair[0].merge(pair[1]) if len(pair) == 2 else pair[0]
                  for pair in (blocks[index:index + 2] for index in range(0, len(blocks), 2))]
    assert blocks[0].count == 1000
    np.testing.assert_allclose(blocks[0].mean, pixels.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(blocks[0].covariance, np.cov(pixels, rowvar=False), rtol=1e-9)


def test_whitening_ignores_constant_and_duplicated_bands():
    rng = np.random.default_rng(2)
    pixels = rng.normal(size=(500, 4))
    with_degenerate = np.column_stack([pixels, pixels[:, 0], np.full(500, 3.0)])
    plain = rx.rx_scores(pixels, pixels.mean(0), rx.whitening_matrix(np.cov(pixels, rowvar=False)))
    degenerate_cov = np.cov(with_degenerate, rowvar=False)
    whitening = rx.whitening_matrix(degenerate_cov)
    assert whitening.shape == (6, 4)
    scores = rx.rx_scores(with_degenerate, with_degenerate.mean(0), whitening)
    np.testing.assert_allclose(scores, plain, rtol=1e-8)


@pytest.mark.parametrize("budget_mb", [16, 512])
def test_global_rx_streaming_matches_in_memory_reference(tmp_path, budget_mb):
    rng = np.random.default_rng(3)
    cube = correlated_cube(rng, bands=12, rows=700, columns=600)  # 16 MB budget forces several blocks
    source = write_raster(tmp_path / "cube.tif", cube.astype(np.float32))
    output = str(tmp_path / f"rx_{budget_mb}.tif")
    detect_rx(source, output, RxOptions(memory_budget_mb=budget_mb))
    expected = reference_rx(cube.astype(np.float32))
    np.testing.assert_allclose(read(output), expected, rtol=1e-6, atol=1e-6 * expected.max())


def test_nodata_pixels_are_excluded_from_statistics_and_written_as_nodata(tmp_path):
    rng = np.random.default_rng(4)
    cube = correlated_cube(rng, bands=6, rows=40, columns=50).astype(np.float32)
    holes = np.zeros(cube.shape[1:], dtype=bool)
    holes[5:9, 10:30] = True
    holes[30, 3] = True
    polluted = cube.copy()
    polluted[2][holes] = -32768  # the band's nodata value
    polluted[4, 20, 20] = np.nan  # NaN is invalid without being declared
    source = write_raster(tmp_path / "holes.tif", polluted, nodata=-32768)
    output = str(tmp_path / "rx.tif")
    summary = detect_rx(source, output)
    invalid = holes.copy()
    invalid[20, 20] = True
    scores = read(output)
    assert summary.valid_pixels == invalid.size - invalid.sum()
    assert np.all(scores[invalid] == OUTPUT_NODATA)
    pixels = cube[:, ~invalid].T.astype(np.float64)
    centred = pixels - pixels.mean(0)
    expected = np.einsum("nc,cd,nd->n", centred, np.linalg.pinv(np.cov(pixels, rowvar=False)), centred)
    np.testing.assert_allclose(scores[~invalid], expected, rtol=1e-5)


@pytest.mark.parametrize("bad_band", [False, True])
def test_global_rx_reads_a_clean_raster_twice_and_one_with_a_bad_band_three_times(tmp_path, bad_band):
    """The validity scan gathers the background statistics of the pixels valid in every band; without a bad band
    they are the reader's, and the statistics pass is skipped (scores as the in-memory reference either way)."""
    from fers_qgis.core.raster import BlockReader
    rng = np.random.default_rng(9)
    cube = correlated_cube(rng, bands=8, rows=60, columns=45).astype(np.float32)
    cube[3, 10:14, 5:9] = np.nan  # holes: pixels invalid in one band, left out of the statistics
    if bad_band:
        cube[5] = 0.0  # constant band: left out by the scan
    source = write_raster(tmp_path / "cube.tif", cube)
    rows_read = []
    original = BlockReader.read_allowed

    def counting(self, first_row, row_count, *args, **kwargs):
        if self.info.path == source:  # the raster itself, not the job's temporary score map
            rows_read.append(row_count)
        return original(self, first_row, row_count, *args, **kwargs)

    with mock.patch.object(BlockReader, "read_allowed", counting):
        detect_rx(source, str(tmp_path / "rx.tif"))
    assert sum(rows_read) == (3 if bad_band else 2) * 60
    valid = np.isfinite(cube).all(axis=0)
    kept = np.delete(cube, 5, axis=0) if bad_band else cube
    pixels = kept[:, valid].T.astype(np.float64)
    centred = pixels - pixels.mean(0)
    expected = np.einsum("nc,cd,nd->n", centred, np.linalg.pinv(np.cov(pixels, rowvar=False)), centred)
    np.testing.assert_allclose(read(str(tmp_path / "rx.tif"))[valid], expected, rtol=1e-5)


def test_georeferencing_is_preserved(tmp_path):
    rng = np.random.default_rng(5)
    geotransform = (399960.0, 30.0, 0.0, 5000040.0, 0.0, -30.0)
    source = write_raster(tmp_path / "geo.tif", correlated_cube(rng, rows=20, columns=30).astype(np.float32),
                          geotransform=geotransform, epsg=32633)
    output = str(tmp_path / "rx.tif")
    detect_rx(source, output)
    dataset = gdal.Open(output)
    assert (dataset.RasterXSize, dataset.RasterYSize, dataset.RasterCount) == (30, 20, 1)
    assert dataset.GetGeoTransform() == pytest.approx(geotransform)
    assert dataset.GetSpatialRef().GetAuthorityCode(None) == "32633"
    assert dataset.GetRasterBand(1).DataType == gdal.GDT_Float32
    assert dataset.GetRasterBand(1).GetNoDataValue() == OUTPUT_NODATA


def test_band_subset_and_mask_raster(tmp_path):
    rng = np.random.default_rng(6)
    cube = correlated_cube(rng, bands=8, rows=30, columns=30).astype(np.float32)
    mask = np.ones((30, 30), dtype=np.uint8)
    mask[:10] = 0
    source = write_raster(tmp_path / "cube.tif", cube)
    mask_path = write_raster(tmp_path / "mask.tif", mask[None], dtype=gdal.GDT_Byte)
    output = str(tmp_path / "rx.tif")
    detect_rx(source, output, RxOptions(bands=(2, 5, 7)), mask_path=mask_path)
    scores = read(output)
    assert np.all(scores[:10] == OUTPUT_NODATA)
    expected = reference_rx(cube[[1, 4, 6], 10:])
    np.testing.assert_allclose(scores[10:], expected, rtol=1e-5)


def test_local_rx_without_remedies_matches_spectral_python(tmp_path):
    """With every remedy off (all components, no shrinkage, any ring larger than the dimension) the running-sum
    local RX is exactly Spectral Python's windowed RX, whatever the strip height."""
    spectral = pytest.importorskip("spectral", reason="Spectral Python is the reference for windowed RX")
    rng = np.random.default_rng(7)
    cube = correlated_cube(rng, bands=6, rows=23, columns=31)
    source = write_raster(tmp_path / "cube.tif", cube, dtype=gdal.GDT_Float64)
    expected = spectral.rx(np.moveaxis(cube, 0, -1), window=(3, 9))
    plain = rx.LocalBackgroundRule(ring_pixels_per_component=None, prior_pixels_per_component=0,
                                   min_ring_pixels_per_component=0, global_residual=False)
    for strip_rows in (1, 4, 23):
        output = str(tmp_path / f"local_{strip_rows}.tif")
        with mock.patch("fers_qgis.core.detection.local_strip_rows", return_value=strip_rows):
            detect_rx(source, output, RxOptions(detector="local", inner_window=3, outer_window=9,
                                                local_background=plain))
        np.testing.assert_allclose(read(output), expected, rtol=1e-4, atol=1e-5 * expected.max())


class CancelAfterFirstReport(Progress):
    def __init__(self):
        self.reports = 0

    def set_fraction(self, fraction):
        self.reports += 1

    def is_cancelled(self):
        return self.reports > 0


@pytest.mark.parametrize("detector", ["global", "local"])
def test_cancel_leaves_no_output(tmp_path, detector):
    rng = np.random.default_rng(9)
    source = write_raster(tmp_path / "cube.tif", correlated_cube(rng, bands=5, rows=300, columns=200))
    output = tmp_path / "rx.tif"
    with pytest.raises(Cancelled):
        detect_rx(source, str(output), RxOptions(detector=detector, memory_budget_mb=16),
                  progress=CancelAfterFirstReport())
    assert os.listdir(tmp_path) == ["cube.tif"]


@pytest.mark.parametrize("case, message", [
    ("single_band", "at least 2 bands"),
    ("fewer_pixels_than_bands", "more valid pixels than bands"),
    ("all_nodata", "no valid pixels"),
    ("constant", "constant"),
    ("garbage_file", "Cannot read"),
    ("missing_file", "not found"),
])
def test_bad_input_gives_clear_error_and_no_output(tmp_path, case, message):
    rng = np.random.default_rng(10)
    source = str(tmp_path / "input.tif")
    if case == "single_band":
        write_raster(source, rng.normal(size=(1, 10, 10)).astype(np.float32))
    elif case == "fewer_pixels_than_bands":
        write_raster(source, rng.normal(size=(30, 4, 5)).astype(np.float32))
    elif case == "all_nodata":
        write_raster(source, np.full((3, 10, 10), -1.0, dtype=np.float32), nodata=-1.0)
    elif case == "constant":
        write_raster(source, np.full((3, 10, 10), 7.0, dtype=np.float32))
    elif case == "garbage_file":
        with open(source, "wb") as handle:
            handle.write(b"this is not a GeoTIFF" * 10)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(InputError, match=message):
        detect_rx(source, str(tmp_path / "out.tif"))
    assert sorted(os.listdir(tmp_path)) == before


def test_output_equal_to_input_is_refused(tmp_path):
    source = write_raster(tmp_path / "cube.tif", np.random.default_rng(11).normal(size=(3, 10, 10)))
    with pytest.raises(InputError, match="also an input"):
        detect_rx(source, source)


@pytest.mark.skipif(not EVAL_SCENES, reason="real scenes not found in ../shared/data/eval")
@pytest.mark.parametrize("truth", EVAL_SCENES, ids=EVAL_NAMES)
def test_real_scenes_match_reference_and_published_auc(tmp_path, truth):
    name = os.path.basename(truth)[:-len("_gt.tif")]
    scene = os.path.join(EVAL_DIR, f"{name}.tif")
    output = str(tmp_path / "rx.tif")
    detect_rx(scene, output, RxOptions(memory_budget_mb=16))
    dataset = gdal.Open(scene)
    expected = reference_rx(dataset.ReadAsArray().astype(np.float64))
    scores = read(output)
    np.testing.assert_allclose(scores, expected, rtol=1e-6, atol=1e-6 * expected.max())
    assert round(roc_auc(scores, read(truth) == 1), 4) == PUBLISHED_RX_AUC[name]
