"""Evaluate anomaly map: AUCs through processing.run, and the report with the ROC curve."""
import numpy as np
import processing
import pytest
from osgeo import gdal
from qgis.core import QgsProcessingException, QgsProject

from fers_qgis.core.metrics import false_alarm_auc, roc_auc, roc_curve
from tests.helpers import write_raster

pytestmark = pytest.mark.usefixtures("fers_plugin")


def test_curve_and_false_alarm_auc_match_brute_force():
    rng = np.random.default_rng(0)
    labels = rng.random(400) < 0.1
    scores = np.round(rng.normal(size=400) + 2 * labels, 1)  # rounded: many ties
    false_alarm, detection, _ = roc_curve(scores, labels)
    trapezoid = np.trapezoid if hasattr(np, "trapezoid") else np.trapz  # numpy 2 deprecates trapz, 1.24 lacks the other
    assert trapezoid(detection, false_alarm) == pytest.approx(roc_auc(scores, labels))
    scaled = (scores - scores.min()) / (scores.max() - scores.min())
    taus = (np.arange(200_000) + 0.5) / 200_000
    brute = np.mean([(scaled[~labels] >= tau).mean() for tau in taus[::100]])
    assert false_alarm_auc(scores, labels) == pytest.approx(brute, abs=2e-3)


def test_evaluation_through_processing(tmp_path, qgis_new_project):
    rng = np.random.default_rng(1)
    truth = np.zeros((30, 40), dtype=np.uint8)
    truth[5:8, 10:13] = 1
    scores = rng.normal(size=(30, 40)).astype(np.float32) + 3 * truth
    scores[0, :5] = -9999.0  # nodata: left out
    score_path = write_raster(tmp_path / "scores.tif", scores, nodata=-9999.0)
    truth_path = write_raster(tmp_path / "truth.tif", truth)
    result = processing.runAndLoadResults("fers:evaluateanomalymap", {
        "SCORES": score_path, "TRUTH": truth_path, "REPORT": str(tmp_path / "report.html"),
        "CURVE": str(tmp_path / "roc.png")})
    valid = scores != -9999.0
    assert result["AUC"] == pytest.approx(roc_auc(scores[valid], truth[valid] == 1))
    assert result["FALSE_ALARM_AUC"] == pytest.approx(false_alarm_auc(scores[valid], truth[valid] == 1))
    report = (tmp_path / "report.html").read_text()
    assert f"{result['AUC']:.4f}" in report and "<img src='file://" in report and "roc.png" in report
    image = gdal.Open(str(tmp_path / "roc.png"))
    assert image.RasterCount == 3 and image.RasterXSize == 560
    # The figure is readable inside QGIS 3.22: loaded into the project as an image layer.
    loaded = QgsProject.instance().mapLayersByName(f"ROC curve of scores (AUC {result['AUC']:.4f})")
    assert len(loaded) == 1 and loaded[0].isValid() and loaded[0].source() == str(tmp_path / "roc.png")
    QgsProject.instance().removeAllMapLayers()


def test_the_roc_figure_has_its_curve_axes_ticks_and_auc(tmp_path):
    """Measured on the drawn pixels: the curve's colour follows the curve, and text (ticks, labels, AUC) lies
    outside the plot box where nothing else is drawn."""
    from fers_qgis.core.evaluation import Evaluation
    from fers_qgis.processing import roc_figure

    perfect = Evaluation("s", "t", 1.0, 0.0, 5, 95, np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 1.0]))
    path = str(tmp_path / "roc.png")
    roc_figure.write_roc_png(perfect, path)
    image = gdal.Open(path)
    rgb = np.stack([image.GetRasterBand(band).ReadAsArray() for band in (1, 2, 3)], axis=-1).astype(int)
    size = roc_figure.FIGURE_SIZE
    left, top = roc_figure._LEFT, roc_figure._TOP
    right, bottom = size - roc_figure._RIGHT, size - roc_figure._BOTTOM
    red = (np.abs(rgb - [160, 20, 40]).sum(axis=-1) < 60)
    # A perfect detector's curve runs up the left edge and along the top: red there, not in the middle.
    assert red[top + 5:bottom - 5, left - 2:left + 3].any(axis=1).mean() > 0.9
    assert red[top - 2:top + 3, left + 5:right - 5].any(axis=0).mean() > 0.9
    assert not red[top + 40:bottom - 40, left + 40:right - 40].any()
    ink = rgb.sum(axis=-1) < 600  # outside the plot box, only text and tick marks are drawn
    assert ink[:top - 4, left:right].sum() > 400                 # the title with the AUC
    assert ink[bottom + 8:bottom + 26, left:right].sum() > 100    # x tick labels
    assert ink[bottom + 30:, left:right].sum() > 400              # x axis label
    assert ink[top:bottom, :30].sum() > 400                       # rotated y axis label
    assert ink[top:bottom, 30:left - 6].sum() > 100               # y tick labels


def test_mismatched_grids_and_missing_anomalies_are_refused(tmp_path):
    scores = write_raster(tmp_path / "scores.tif", np.zeros((10, 10), dtype=np.float32))
    small = write_raster(tmp_path / "small.tif", np.zeros((5, 10), dtype=np.uint8))
    empty = write_raster(tmp_path / "empty.tif", np.zeros((10, 10), dtype=np.uint8))
    for truth, message in ((small, "same pixel grid"), (empty, "both anomaly pixels")):
        with pytest.raises(QgsProcessingException, match=message):
            processing.run("fers:evaluateanomalymap", {"SCORES": scores, "TRUTH": truth,
                                                       "REPORT": str(tmp_path / "r.html"),
                                                       "CURVE": str(tmp_path / "c.png")})
