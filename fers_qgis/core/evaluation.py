"""Evaluating an anomaly score map against ground truth: ROC AUC, the false-alarm AUC, a report with the curve.

Ranking needs every score at once, so the score band is read whole (4 bytes a pixel plus the ranking's work
arrays: about 50 bytes a pixel, 450 MB for a 3000 x 3000 map).
"""
import html
import os
import pathlib
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .errors import InputError
from .metrics import false_alarm_auc, roc_auc, roc_curve
from .raster import BlockReader, describe_raster


@dataclass
class Evaluation:
    score_path: str
    truth_path: str
    auc: float                      # area under the ROC curve (detection vs false alarm), higher is better
    false_alarm_auc: float          # area under false alarm vs threshold, lower is better
    anomaly_pixels: int
    background_pixels: int
    false_alarm: np.ndarray         # the ROC curve
    detection: np.ndarray


def _read_band(path: str, mask_path: Optional[str] = None):
    info = describe_raster(path)
    reader = BlockReader(info, (1,), mask_path)
    try:
        values, valid = reader.read(0, info.height)
        return info, values[0].astype(np.float64), valid.copy()
    finally:
        reader.close()


def evaluate_map(score_path: str, truth_path: str, mask_path: Optional[str] = None) -> Evaluation:
    """Compare band 1 of a score raster with a ground-truth raster (1 = anomaly, other values background) on
    the pixels valid in both (and non-zero in the optional mask)."""
    score_info, scores, valid = _read_band(score_path, mask_path)
    truth_info, truth, truth_valid = _read_band(truth_path)
    if (score_info.width, score_info.height) != (truth_info.width, truth_info.height):
        raise InputError(f"The score map is {score_info.width} x {score_info.height} pixels but the ground truth is "
                         f"{truth_info.width} x {truth_info.height}: they must cover the same pixel grid.")
    valid &= truth_valid
    labels = truth[valid] == 1
    scores = scores[valid]
    if not labels.any() or labels.all():
        raise InputError("The ground truth needs both anomaly pixels (value 1) and background pixels among the "
                         "valid pixels of the score map.")
    false_alarm, detection, _ = roc_curve(scores, labels)
    return Evaluation(score_path, truth_path, roc_auc(scores, labels), false_alarm_auc(scores, labels),
                      int(labels.sum()), int((~labels).sum()), false_alarm, detection)


def roc_points(evaluation: Evaluation, columns: int = 4 * 400):
    """(false alarm, detection) of the ROC curve thinned to about ``columns`` false-alarm steps, each with the
    first and last point at that false-alarm rate (so vertical runs keep their height); enough for any plot."""
    steps = np.linspace(0, 1, columns)
    keep = np.unique(np.r_[0, np.searchsorted(evaluation.false_alarm, steps),
                           np.searchsorted(evaluation.false_alarm, steps, side="right") - 1,
                           len(evaluation.false_alarm) - 1].clip(0, len(evaluation.false_alarm) - 1))
    return evaluation.false_alarm[keep], evaluation.detection[keep]


def write_report(evaluation: Evaluation, html_path: str, png_path: str) -> None:
    """An HTML page with the figures and the ROC curve image (``png_path``, drawn by the caller)."""
    rows = [("Score map", html.escape(evaluation.score_path)), ("Ground truth", html.escape(evaluation.truth_path)),
            ("ROC AUC (detection vs false alarm; higher is better)", f"{evaluation.auc:.4f}"),
            ("AUC of false alarm vs threshold (lower is better)", f"{evaluation.false_alarm_auc:.4f}"),
            ("Anomaly pixels", str(evaluation.anomaly_pixels)),
            ("Background pixels", str(evaluation.background_pixels))]
    table = "\n".join(f"<tr><th align='left'>{name}</th><td>{value}</td></tr>" for name, value in rows)
    image_uri = html.escape(pathlib.Path(os.path.abspath(png_path)).as_uri())
    page = (f"<html><head><meta charset='utf-8'><title>Anomaly map evaluation</title></head><body>"
            f"<h2>Anomaly map evaluation</h2><table>{table}</table><h3>ROC curve</h3>"
            f"<p><img src='{image_uri}' alt='ROC curve'></p>"
            f"<p>PNG: <a href='{image_uri}'>{html.escape(png_path)}</a></p>"
            f"</body></html>")
    with open(html_path, "w", encoding="utf-8") as handle:
        handle.write(page)
