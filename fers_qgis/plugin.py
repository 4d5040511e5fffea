"""The QGIS plugin object: registers the Processing provider and the raster layer actions."""
from qgis.core import QgsApplication

from .gui.layer_menu import LayerMenu
from .processing.provider import FersProvider


class FersPlugin:
    """Created by `classFactory`; QGIS desktop calls initGui/unload, qgis_process calls only initProcessing."""

    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.layer_menu = None

    def initProcessing(self):  # noqa: N802 (name fixed by QGIS)
        """Register the FERS provider with Processing (once)."""
        if self.provider is None:
            self.provider = FersProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802 (name fixed by QGIS)
        """Register the provider and add the right-click entries for raster layers."""
        self.initProcessing()
        self.layer_menu = LayerMenu(self.iface)
        self.layer_menu.add()

    def unload(self):
        """Remove everything initGui/initProcessing added."""
        if self.layer_menu is not None:
            self.layer_menu.remove()
            self.layer_menu = None
        if self.provider is not None:
            # The registry owns and deletes the provider.
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
