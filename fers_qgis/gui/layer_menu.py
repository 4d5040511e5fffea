"""Right-click entries on raster layers, in a FERS submenu, that open a FERS algorithm's dialog with the clicked
layer as input; each entry carries its algorithm's toolbox name and icon."""
from dataclasses import dataclass
from typing import List, Sequence

from qgis.PyQt.QtCore import QCoreApplication

from ..about import algorithm_icon
from ..compat import LAYER_RASTER, QAction
from ..processing.algorithms import DetectAnomaliesFers, DetectAnomaliesRx, EnhanceFeaturesFers, EvaluateAnomalyMap


@dataclass(frozen=True)
class LayerAction:
    """One context-menu entry: the algorithm whose dialog it opens, and the parameter the clicked layer fills."""

    algorithm: type  # a FersAlgorithm subclass
    layer_parameter: str = "INPUT"

    @property
    def text(self) -> str:
        """The toolbox name, with the dots that say a dialog opens."""
        return self.algorithm.DISPLAY_NAME + "..."

    @property
    def algorithm_id(self) -> str:
        return "fers:" + self.algorithm.ALGORITHM_ID


# A new algorithm gets its right-click entry by adding one line here.
RASTER_LAYER_ACTIONS = (
    LayerAction(DetectAnomaliesRx),
    LayerAction(DetectAnomaliesFers),
    LayerAction(EnhanceFeaturesFers),
    LayerAction(EvaluateAnomalyMap, EvaluateAnomalyMap.SCORES),
)

# The submenu of the layer's context menu that holds the entries.
MENU_NAME = "FERS"


class LayerMenu:
    """Adds and removes the context-menu entries for raster layers; used by the plugin's initGui/unload."""

    def __init__(self, iface, entries: Sequence[LayerAction] = RASTER_LAYER_ACTIONS):
        self.iface = iface
        self.entries = tuple(entries)
        self.actions: List[QAction] = []

    def add(self) -> None:
        """Create one QAction per entry and register it for every raster layer."""
        for entry in self.entries:
            text = QCoreApplication.translate("LayerMenu", entry.text)
            action = QAction(algorithm_icon(entry.algorithm.ICON), text, self.iface.mainWindow())
            action.triggered.connect(lambda _checked=False, entry=entry: self.open_dialog(entry))
            self.iface.addCustomActionForLayerType(action, MENU_NAME, LAYER_RASTER, True)
            self.actions.append(action)

    def remove(self) -> None:
        """Unregister and delete the actions."""
        for action in self.actions:
            self.iface.removeCustomActionForLayerType(action)
            action.deleteLater()
        self.actions = []

    def open_dialog(self, entry: LayerAction) -> None:
        """Open the entry's algorithm dialog with the clicked layer (QGIS makes it the active layer) as input."""
        import processing  # QGIS's Processing plugin: present in the desktop app, not needed at import time

        layer = self.iface.activeLayer()
        parameters = {entry.layer_parameter: layer} if layer is not None else {}
        processing.execAlgorithmDialog(entry.algorithm_id, parameters)
