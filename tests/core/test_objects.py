"""Thresholds without ground truth, the binary anomaly mask and anomaly objects, from a score raster."""
import numpy as np
import pytest
from osgeo import ogr

from fers_qgis.core import objects
from fers_qgis.core.errors import InputError
from fers_qgis.core.output import OUTPUT_NODATA
from tests.helpers import TEST_GEOTRANSFORM, read_raster, write_raster


def score_raster(tmp_path, scores, name="scores.tif"):
    return write_raster(tmp_path / name, np.asarray(scores, dtype=np.float32), nodata=OUTPUT_NODATA)


@pytest.mark.parametrize("percent", [0.01, 0.5, 3.0, 50.0, 99.0])
def test_top_percent_threshold_is_the_exact_order_statistic(tmp_path, percent, monkeypatch):
    monkeypatch.setattr(objects, "_QUANTILE_SAMPLE_LIMIT", 500)  # force the histogram refinement passes
    rng = np.random.default_rng(1)
    scores = rng.gamma(2.0, size=(120, 90)).astype(np.float32)
    scores[:3] = 1.0   # ties
    scores[5, :10] = OUTPUT_NODATA
    valid = scores[scores != OUTPUT_NODATA].astype(np.float64)
    rank = int(np.ceil(valid.size * percent / 100))
    expected = np.sort(valid)[::-1][rank - 1]
    threshold = objects.threshold_for(score_raster(tmp_path, scores), "top-percent", percent, budget=4096)
    assert threshold == expected
    assert (valid >= threshold).sum() >= rank


def test_threshold_rules_are_checked(tmp_path):
    path = score_raster(tmp_path, np.ones((4, 4)))
    assert objects.threshold_for(path, "score", 2.5) == 2.5
    assert objects.threshold_for(path, "top-percent", 10) == 1.0
    for rule, value in [("top-percent", 0), ("top-percent", 100), ("score", float("nan")), ("median", 1)]:
        with pytest.raises(InputError):
            objects.threshold_for(path, rule, value)


def test_mask_marks_pixels_at_or_above_the_threshold_and_keeps_nodata(tmp_path):
    scores = np.arange(20, dtype=np.float32).reshape(4, 5)
    scores[0, 0] = OUTPUT_NODATA
    output = str(tmp_path / "mask.tif")
    assert objects.write_mask(score_raster(tmp_path, scores), output, 15.0) == 5
    written = read_raster(output)
    assert written.data_types == ("Byte",) and written.nodata == (objects.MASK_NODATA,)
    expected = np.where(scores >= 15, 1, 0)
    expected[0, 0] = objects.MASK_NODATA
    np.testing.assert_array_equal(written.cube_bhw[0], expected)
    assert written.geotransform == TEST_GEOTRANSFORM


def test_objects_are_8_connected_regions_with_their_statistics(tmp_path):
    scores = np.zeros((12, 10), dtype=np.float32)
    scores[1, 1:3] = [5, 6]           # one object with a diagonal neighbour below
    scores[2, 3] = 9
    scores[6:9, 6] = [4, 4, 4]        # a vertical bar
    scores[6, 8] = 4                  # not touching the bar (one column apart)
    scores[10:12, 0:10] = 3           # a wide object crossing windows of rows
    scores[11, 4] = OUTPUT_NODATA     # nodata pixels belong to no object
    found = objects.find_objects(score_raster(tmp_path, scores), 3.0, budget=10 * 8)
    assert [item.object_id for item in found] == [1, 2, 3, 4]
    diagonal, bar, single, wide = found[0], found[1], found[2], found[3]
    assert (diagonal.pixel_count, diagonal.peak_score, diagonal.mean_score) == (3, 9.0, pytest.approx(20 / 3))
    assert {bar.pixel_count, single.pixel_count} == {3, 1}
    assert wide.pixel_count == 19
    x0, dx, _, y0, _, dy = TEST_GEOTRANSFORM
    assert diagonal.peak_x == x0 + 3.5 * dx and diagonal.peak_y == y0 + 2.5 * dy
    assert diagonal.area == 3 * abs(dx * dy)
    bar_object = bar if bar.pixel_count == 3 else single
    assert (bar_object.centroid_x, bar_object.centroid_y) == (x0 + 6.5 * dx, y0 + 7.5 * dy)
    polygon = ogr.CreateGeometryFromWkt(wide.polygon_wkt)
    assert polygon.GetArea() == pytest.approx(19 * abs(dx * dy))


def test_too_many_objects_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(objects, "MAX_OBJECTS", 3)
    scores = np.zeros((5, 9), dtype=np.float32)
    scores[::2, ::2] = 1.0
    with pytest.raises(InputError, match="stricter threshold"):
        objects.find_objects(score_raster(tmp_path, scores), 0.5)
