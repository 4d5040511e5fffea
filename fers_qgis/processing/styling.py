"""How a run's loaded layers look: named after the run, scores on a perceptual ramp, masks with a transparent
background, objects as outlines, and the decisions stacked above the scores they come from.

Processing applies styles through layer post-processors once the layers are loaded into the project.
"""
from typing import Dict, Sequence

from qgis.core import (
    QgsFillSymbol,
    QgsLayerTree,
    QgsPalettedRasterRenderer,
    QgsProcessingLayerPostProcessorInterface,
    QgsSingleBandPseudoColorRenderer,
    QgsSingleSymbolRenderer,
    QgsStyle,
)
from qgis.PyQt import sip
from qgis.PyQt.QtGui import QColor

from ..compat import SHADER_CONTINUOUS, SHADER_INTERPOLATED

# Stretch of the score ramp: anomalies are the top few pixels, so the top 2% saturate the ramp's bright end.
SCORE_STRETCH = (0.02, 0.98)
SCORE_RAMP = "Inferno"
# Samples of the raster used for the stretch (QGIS's own default for cumulative cuts on large rasters).
STRETCH_SAMPLE = 250_000


ANOMALY_RED = QColor(230, 25, 75)


def style_scores(layer) -> None:
    """Single-band pseudocolour on a perceptual ramp, stretched between the 2nd and 98th percentiles."""
    provider = layer.dataProvider()
    low, high = provider.cumulativeCut(1, *SCORE_STRETCH, sampleSize=STRETCH_SAMPLE)
    if not high > low:
        high = low + 1.0
    ramp = QgsStyle.defaultStyle().colorRamp(SCORE_RAMP)
    renderer = QgsSingleBandPseudoColorRenderer(provider, 1)
    renderer.setClassificationMin(low)
    renderer.setClassificationMax(high)
    renderer.createShader(ramp, SHADER_INTERPOLATED, SHADER_CONTINUOUS, 5)
    layer.setRenderer(renderer)
    layer.triggerRepaint()


def style_mask(layer) -> None:
    """Anomalies (1) in a strong red, background (0) fully transparent."""
    classes = [QgsPalettedRasterRenderer.Class(0, QColor(0, 0, 0, 0), "background"),
               QgsPalettedRasterRenderer.Class(1, ANOMALY_RED, "anomaly")]
    layer.setRenderer(QgsPalettedRasterRenderer(layer.dataProvider(), 1, classes))
    layer.triggerRepaint()


def style_objects(layer) -> None:
    """Anomaly objects as red outlines with a hollow inside, so the scores and the mask show through."""
    symbol = QgsFillSymbol.createSimple({"style": "no", "outline_color": ANOMALY_RED.name(), "outline_width": "0.6"})
    layer.setRenderer(QgsSingleSymbolRenderer(symbol))
    layer.triggerRepaint()


class _Styler(QgsProcessingLayerPostProcessorInterface):
    def __init__(self, style, loaded):
        super().__init__()
        self._style = style
        self._loaded = loaded

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS API)
        if layer.isValid():
            self._style(layer)
            self._loaded(layer)


_LIVE_STYLERS = []

# Within one run, the layers panel from the top: objects, mask, then the scores they come from.
STACK_ORDER = ("objects", "mask", "scores")


class RunLayers:
    """The layers one run asks Processing to load, named ``<label> <kind> (<detail>)`` with " #2", " #3"... when
    the project already holds a run of the same name, styled, and stacked in STACK_ORDER (Processing loads
    outputs in the order of their paths, which says nothing about how they should lie)."""

    def __init__(self, context, label: str, kinds: Sequence[str], detail: str = ""):
        taken = {details.name for details in context.layersToLoadOnCompletion().values()}
        if context.project() is not None:
            taken |= {layer.name() for layer in context.project().mapLayers().values()}
        self._context = context
        self._label = label
        self._detail = detail
        self._number = 1
        while any(self.name(kind) in taken for kind in kinds):
            self._number += 1
        self._loaded: Dict[str, str] = {}  # stack role -> layer id

    def name(self, kind: str) -> str:
        detail = f" ({self._detail})" if self._detail else ""
        number = f" #{self._number}" if self._number > 1 else ""
        return f"{self._label} {kind}{detail}{number}"

    def load(self, output: str, kind: str, given_name: str = "", style=None, role: str = "") -> None:
        """Name an output that Processing will load (``given_name`` wins); once loaded, style it with
        ``style(layer)`` and stack it by ``role`` (one of STACK_ORDER)."""
        if not self._context.willLoadLayerOnCompletion(output):
            return
        details = self._context.layerToLoadOnCompletionDetails(output)
        details.name = given_name or self.name(kind)
        if style is None:
            return
        project = details.project

        def loaded(layer):
            if role:
                self._loaded[role] = layer.id()
                self._stack(project)

        # Processing deletes a post-processor after use but does not own its Python side: keep each one
        # referenced here until then (deleted ones are dropped), else Python collects it before it runs.
        _LIVE_STYLERS[:] = [styler for styler in _LIVE_STYLERS if not sip.isdeleted(styler)]
        styler = _Styler(style, loaded)
        _LIVE_STYLERS.append(styler)
        details.setPostProcessor(styler)

    def _stack(self, project) -> None:
        """Put the run's loaded layers in STACK_ORDER where the topmost of them lies (if they share a group)."""
        if project is None:
            return
        root = project.layerTreeRoot()
        nodes = [root.findLayer(self._loaded[role]) for role in STACK_ORDER if role in self._loaded]
        nodes = [node for node in nodes if node is not None]
        if len(nodes) < 2 or len({id(node.parent()) for node in nodes}) != 1:
            return
        parent = nodes[0].parent()
        ids = [child.layerId() if QgsLayerTree.isLayer(child) else None for child in parent.children()]
        top = min(ids.index(node.layerId()) for node in nodes)
        # Clones go in first: a layer whose last tree node goes away leaves the project.
        for offset, node in enumerate(nodes):
            parent.insertChildNode(top + offset, node.clone())
        for node in nodes:
            parent.removeChildNode(node)
