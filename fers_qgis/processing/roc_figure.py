"""The ROC curve as a PNG figure a reader can take in without the HTML report: axes with ticks and labels, the
chance diagonal, the curve, and the AUCs written in the figure. Drawn with Qt, which every QGIS has (the core
draws no text; matplotlib is not in every QGIS)."""
from qgis.PyQt.QtCore import QPointF, QRectF, Qt
from qgis.PyQt.QtGui import QColor, QFont, QImage, QPainter, QPen, QPolygonF, QTextOption

from ..core.evaluation import Evaluation, roc_points

FIGURE_SIZE = 560   # pixels, square
_LEFT, _RIGHT, _TOP, _BOTTOM = 78, 24, 56, 70
TICKS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
CURVE_COLOR = QColor(160, 20, 40)


def write_roc_png(evaluation: Evaluation, path: str, size: int = FIGURE_SIZE) -> None:
    """Draw the figure and save it as a PNG (RGB, white background)."""
    image = QImage(size, size, QImage.Format.Format_RGB32)
    image.fill(QColor(255, 255, 255))
    painter = QPainter(image)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        _draw(painter, evaluation, QRectF(_LEFT, _TOP, size - _LEFT - _RIGHT, size - _TOP - _BOTTOM))
    finally:
        painter.end()
    if not image.save(path, "PNG"):
        raise OSError(f"The ROC curve image cannot be written to {path}.")


def _text(painter: QPainter, box: QRectF, text: str, alignment=Qt.AlignmentFlag.AlignCenter) -> None:
    # The QTextOption overload: PyQt6 takes no enum where the other overloads want an int.
    painter.drawText(box, text, QTextOption(alignment))


def _draw(painter: QPainter, evaluation: Evaluation, plot: QRectF) -> None:
    def at(false_alarm: float, detection: float) -> QPointF:
        return QPointF(plot.left() + false_alarm * plot.width(), plot.bottom() - detection * plot.height())

    font = QFont()
    font.setPixelSize(13)
    painter.setFont(font)
    grid, axis = QPen(QColor(225, 225, 225)), QPen(QColor(90, 90, 90))
    for tick in TICKS:
        painter.setPen(grid)
        painter.drawLine(at(tick, 0), at(tick, 1))
        painter.drawLine(at(0, tick), at(1, tick))
        painter.setPen(axis)
        painter.drawLine(at(tick, 0), at(tick, 0) + QPointF(0, 5))
        painter.drawLine(at(0, tick), at(0, tick) - QPointF(5, 0))
        label = f"{tick:.1f}"
        x_label = at(tick, 0)
        _text(painter, QRectF(x_label.x() - 20, x_label.y() + 7, 40, 18), label)
        y_label = at(0, tick)
        _text(painter, QRectF(y_label.x() - 48, y_label.y() - 9, 40, 18), label,
              Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    painter.drawRect(plot)

    chance = QPen(QColor(170, 170, 170))
    chance.setStyle(Qt.PenStyle.DashLine)
    painter.setPen(chance)
    painter.drawLine(at(0, 0), at(1, 1))

    false_alarm, detection = roc_points(evaluation, columns=4 * int(plot.width()))
    curve = QPen(CURVE_COLOR)
    curve.setWidthF(2.5)
    painter.setPen(curve)
    painter.drawPolyline(QPolygonF([at(float(x), float(y)) for x, y in zip(false_alarm, detection)]))

    painter.setPen(QPen(QColor(0, 0, 0)))
    _text(painter, QRectF(plot.left(), plot.bottom() + 30, plot.width(), 22),
          "False-alarm rate (background pixels flagged)")
    painter.save()
    painter.translate(18, plot.center().y())
    painter.rotate(-90)
    _text(painter, QRectF(-plot.height() / 2, -11, plot.height(), 22), "Detection rate (anomaly pixels found)")
    painter.restore()
    title = QFont(font)
    title.setPixelSize(16)
    title.setBold(True)
    painter.setFont(title)
    _text(painter, QRectF(plot.left(), 8, plot.width(), 24), f"ROC curve: AUC {evaluation.auc:.4f}")
    painter.setFont(font)
    _text(painter, QRectF(plot.left(), 32, plot.width(), 20),
          f"false-alarm AUC {evaluation.false_alarm_auc:.4f}; {evaluation.anomaly_pixels} anomaly and "
          f"{evaluation.background_pixels} background pixels")
