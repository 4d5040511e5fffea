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
from osgeo import gdal

from .errors import InputError
from .metrics import false_alarm_auc, roc_auc, roc_curve
from .raster import BlockReader, describe_raster

PLOT_SIZE = 480
_MARGIN = 48


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


def _plot_points(evaluation: Evaluation, size: int = PLOT_SIZE):
    """Curve points in plot pixel coordinates (x right, y down), thinned to at most a few per pixel column."""
    inner = size - 2 * _MARGIN
    keep = np.unique(np.r_[0, np.searchsorted(evaluation.false_alarm, np.linspace(0, 1, 4 * inner)),
                           len(evaluation.false_alarm) - 1].clip(0, len(evaluation.false_alarm) - 1))
    x = _MARGIN + evaluation.false_alarm[keep] * inner
    y = size - _MARGIN - evaluation.detection[keep] * inner
    return x, y


def write_roc_png(evaluation: Evaluation, path: str, size: int = PLOT_SIZE) -> None:
    """The ROC curve as a PNG: white canvas, grey axes box and chance diagonal, the curve in dark red."""
    canvas = np.full((size, size, 3), 255, dtype=np.uint8)
    low, high = _MARGIN, size - _MARGIN
    canvas[low:high + 1, [low, high]] = canvas[[low, high], low:high + 1] = 120
    steps = np.arange(high - low + 1)
    canvas[high - steps, low + steps] = 200
    x, y = _plot_points(evaluation, size)
    for x0, y0, x1, y1 in zip(x[:-1], y[:-1], x[1:], y[1:]):
        count = int(max(abs(x1 - x0), abs(y1 - y0))) + 2
        columns = np.round(np.linspace(x0, x1, count)).astype(int)
        rows = np.round(np.linspace(y0, y1, count)).astype(int)
        for offset in (-1, 0, 1):  # a 3-pixel-wide line
            canvas[(rows + offset).clip(0, size - 1), columns] = (160, 20, 40)
    memory = gdal.GetDriverByName("MEM").Create("", size, size, 3, gdal.GDT_Byte)
    for band in range(3):
        memory.GetRasterBand(band + 1).WriteArray(canvas[:, :, band])
    gdal.GetDriverByName("PNG").CreateCopy(path, memory)


def write_report(evaluation: Evaluation, html_path: str, png_path: str) -> None:
    """An HTML page with the figures and the ROC curve (inline SVG, and the PNG beside it)."""
    write_roc_png(evaluation, png_path)
    x, y = _plot_points(evaluation)
    points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(x, y))
    low, high = _MARGIN, PLOT_SIZE - _MARGIN
    rows = [("Score map", html.escape(evaluation.score_path)), ("Ground truth", html.escape(evaluation.truth_path)),
            ("ROC AUC (detection vs false alarm; higher is better)", f"{evaluation.auc:.4f}"),
            ("AUC of false alarm vs threshold (lower is better)", f"{evaluation.false_alarm_auc:.4f}"),
            ("Anomaly pixels", str(evaluation.anomaly_pixels)),
            ("Background pixels", str(evaluation.background_pixels))]
    table = "\n".join(f"<tr><th align='left'>{name}</th><td>{value}</td></tr>" for name, value in rows)
    svg = (f"<svg xmlns='http://www.w3.org/2000/svg' width='{PLOT_SIZE}' height='{PLOT_SIZE}'>"
           f"<rect x='{low}' y='{low}' width='{high - low}' height='{high - low}' fill='none' stroke='#787878'/>"
           f"<line x1='{low}' y1='{high}' x2='{high}' y2='{low}' stroke='#c8c8c8'/>"
           f"<polyline points='{points}' fill='none' stroke='#a01428' stroke-width='2'/>"
           f"<text x='{PLOT_SIZE / 2}' y='{PLOT_SIZE - 12}' text-anchor='middle'>false-alarm rate</text>"
           f"<text x='14' y='{PLOT_SIZE / 2}' transform='rotate(-90 14 {PLOT_SIZE / 2})' text-anchor='middle'>"
           f"detection rate</text></svg>")
    page = (f"<html><head><meta charset='utf-8'><title>Anomaly map evaluation</title></head><body>"
            f"<h2>Anomaly map evaluation</h2><table>{table}</table><h3>ROC curve</h3>{svg}"
            f"<p>PNG: <a href='{html.escape(pathlib.Path(os.path.abspath(png_path)).as_uri())}'>"
            f"{html.escape(png_path)}</a></p>"
            f"</body></html>")
    with open(html_path, "w", encoding="utf-8") as handle:
        handle.write(page)
