"""Styles for the layers the algorithms load: scores on a perceptual ramp, masks with a transparent background.

Processing applies them through layer post-processors once the layers are loaded into the project.
"""
from qgis.core import (
    QgsColorRampShader,
    QgsPalettedRasterRenderer,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterLayer,
    QgsSingleBandPseudoColorRenderer,
    QgsStyle,
)
from qgis.PyQt import sip
from qgis.PyQt.QtGui import QColor

# Stretch of the score ramp: anomalies are the top few pixels, so the top 2% saturate the ramp's bright end.
SCORE_STRETCH = (0.02, 0.98)
SCORE_RAMP = "Inferno"
# Samples of the raster used for the stretch (QGIS's own default for cumulative cuts on large rasters).
STRETCH_SAMPLE = 250_000


def style_scores(layer: QgsRasterLayer) -> None:
    """Single-band pseudocolour on a perceptual ramp, stretched between the 2nd and 98th percentiles."""
    provider = layer.dataProvider()
    low, high = provider.cumulativeCut(1, *SCORE_STRETCH, sampleSize=STRETCH_SAMPLE)
    if not high > low:
        high = low + 1.0
    ramp = QgsStyle.defaultStyle().colorRamp(SCORE_RAMP)
    renderer = QgsSingleBandPseudoColorRenderer(provider, 1)
    renderer.setClassificationMin(low)
    renderer.setClassificationMax(high)
    renderer.createShader(ramp, QgsColorRampShader.Interpolated, QgsColorRampShader.Continuous, 5)
    layer.setRenderer(renderer)
    layer.triggerRepaint()


def style_mask(layer: QgsRasterLayer) -> None:
    """Anomalies (1) in a strong red, background (0) fully transparent."""
    classes = [QgsPalettedRasterRenderer.Class(0, QColor(0, 0, 0, 0), "background"),
               QgsPalettedRasterRenderer.Class(1, QColor(230, 25, 75), "anomaly")]
    layer.setRenderer(QgsPalettedRasterRenderer(layer.dataProvider(), 1, classes))
    layer.triggerRepaint()


class _Styler(QgsProcessingLayerPostProcessorInterface):
    def __init__(self, style):
        super().__init__()
        self._style = style

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS API)
        if isinstance(layer, QgsRasterLayer) and layer.isValid():
            self._style(layer)


_LIVE_STYLERS = []


def load_styled(context, output_path: str, name: str, style) -> None:
    """Name an output that Processing will load, and style it with ``style(layer)`` once loaded."""
    if context.willLoadLayerOnCompletion(output_path):
        details = context.layerToLoadOnCompletionDetails(output_path)
        details.name = name
        # Processing deletes a post-processor after use but does not own its Python side: keep each one
        # referenced here until then (deleted ones are dropped), else Python collects it before it runs.
        _LIVE_STYLERS[:] = [styler for styler in _LIVE_STYLERS if not sip.isdeleted(styler)]
        styler = _Styler(style)
        _LIVE_STYLERS.append(styler)
        details.setPostProcessor(styler)
