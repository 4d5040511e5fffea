"""Right-click entries on raster layers that open a FERS algorithm's dialog with the clicked layer as input."""
from dataclasses import dataclass
from typing import List, Sequence

from qgis.core import QgsMapLayerType
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtWidgets import QAction

from ..about import plugin_icon


@dataclass(frozen=True)
class LayerAction:
    """One context-menu entry: its text and the algorithm whose dialog it opens, prefilled with the layer."""

    text: str
    algorithm_id: str
    layer_parameter: str = "INPUT"


# A new algorithm gets its right-click entry by adding one line here.
RASTER_LAYER_ACTIONS = (
    LayerAction("Detect anomalies...", "fers:detectanomaliesrx"),
    LayerAction("Detect anomalies (FERS)...", "fers:detectanomaliesfers"),
    LayerAction("Enhance features (FERS)...", "fers:enhancefeatures"),
)

# Empty: the entries sit directly in the layer's context menu; a name would group them in a submenu.
MENU_NAME = ""


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
            action = QAction(plugin_icon(), text, self.iface.mainWindow())
            action.triggered.connect(lambda _checked=False, entry=entry: self.open_dialog(entry))
            self.iface.addCustomActionForLayerType(action, MENU_NAME, QgsMapLayerType.RasterLayer, True)
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
