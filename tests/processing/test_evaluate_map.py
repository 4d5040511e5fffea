"""Evaluate anomaly map: AUCs through processing.run, and the report with the ROC curve."""
import numpy as np
import processing
import pytest
from osgeo import gdal
from qgis.core import QgsProcessingException

from fers_qgis.core.metrics import false_alarm_auc, roc_auc, roc_curve
from tests.helpers import write_raster

pytestmark = pytest.mark.usefixtures("fers_plugin")


def test_curve_and_false_alarm_auc_match_brute_force():
    rng = np.random.default_rng(0)
    labels = rng.random(400) < 0.1
    scores = np.round(rng.normal(size=400) + 2 * labels, 1)  # rounded: many ties
    false_alarm, detection, _ = roc_curve(scores, labels)
    assert np.trapz(detection, false_alarm) == pytest.approx(roc_auc(scores, labels))
    scaled = (scores - scores.min()) / (scores.max() - scores.min())
    taus = (np.arange(200_000) + 0.5) / 200_000
    brute = np.mean([(scaled[~labels] >= tau).mean() for tau in taus[::100]])
    assert false_alarm_auc(scores, labels) == pytest.approx(brute, abs=2e-3)


def test_evaluation_through_processing(tmp_path):
    rng = np.random.default_rng(1)
    truth = np.zeros((30, 40), dtype=np.uint8)
    truth[5:8, 10:13] = 1
    scores = rng.normal(size=(30, 40)).astype(np.float32) + 3 * truth
    scores[0, :5] = -9999.0  # nodata: left out
    score_path = write_raster(tmp_path / "scores.tif", scores, nodata=-9999.0)
    truth_path = write_raster(tmp_path / "truth.tif", truth)
    result = processing.run("fers:evaluateanomalymap", {
        "SCORES": score_path, "TRUTH": truth_path, "REPORT": str(tmp_path / "report.html"),
        "CURVE": str(tmp_path / "roc.png")})
    valid = scores != -9999.0
    assert result["AUC"] == pytest.approx(roc_auc(scores[valid], truth[valid] == 1))
    assert result["FALSE_ALARM_AUC"] == pytest.approx(false_alarm_auc(scores[valid], truth[valid] == 1))
    report = (tmp_path / "report.html").read_text()
    assert f"{result['AUC']:.4f}" in report and "<polyline" in report
    image = gdal.Open(str(tmp_path / "roc.png"))
    assert image.RasterCount == 3 and image.RasterXSize == 480


def test_mismatched_grids_and_missing_anomalies_are_refused(tmp_path):
    scores = write_raster(tmp_path / "scores.tif", np.zeros((10, 10), dtype=np.float32))
    small = write_raster(tmp_path / "small.tif", np.zeros((5, 10), dtype=np.uint8))
    empty = write_raster(tmp_path / "empty.tif", np.zeros((10, 10), dtype=np.uint8))
    for truth, message in ((small, "same pixel grid"), (empty, "both anomaly pixels")):
        with pytest.raises(QgsProcessingException, match=message):
            processing.run("fers:evaluateanomalymap", {"SCORES": scores, "TRUTH": truth,
                                                       "REPORT": str(tmp_path / "r.html"),
                                                       "CURVE": str(tmp_path / "c.png")})
