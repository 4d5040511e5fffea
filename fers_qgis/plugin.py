"""The QGIS plugin object: registers the Processing provider, the raster layer actions and the Plugins menu."""
from qgis.core import QgsApplication
from . import dependencies
from .about import plugin_icon
from .compat import QAction
from .gui.layer_menu import LayerMenu
from .processing.provider import FersProvider

PLUGINS_MENU = "&FERS"


def private_site_dir() -> str:
    """The plugin-private package folder of the active QGIS profile."""
    return dependencies.private_site_dir(QgsApplication.qgisSettingsDirPath())


class FersPlugin:
    """Created by `classFactory`; QGIS desktop calls initGui/unload, qgis_process calls only initProcessing."""

    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.layer_menu = None
        self.install_action = None
        # Before any algorithm runs: packages installed by "Install FERS dependencies" become importable.
        dependencies.add_to_path(private_site_dir())

    def initProcessing(self):  # noqa: N802 (name fixed by QGIS)
        """Register the FERS provider with Processing (once)."""
        if self.provider is None:
            self.provider = FersProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802 (name fixed by QGIS)
        """Register the provider and add the right-click entries and the Plugins menu entry."""
        self.initProcessing()
        self.layer_menu = LayerMenu(self.iface)
        self.layer_menu.add()
        self.install_action = QAction(plugin_icon(), "Install FERS dependencies", self.iface.mainWindow())
        self.install_action.triggered.connect(self.install_dependencies)
        self.iface.addPluginToMenu(PLUGINS_MENU, self.install_action)

    def install_dependencies(self):
        """Open the dialog that installs onnxruntime with pip into the plugin-private folder."""
        from .gui.dependencies_dialog import DependenciesDialog

        dialog = DependenciesDialog(private_site_dir(), self.iface.mainWindow())
        dialog.start()
        dialog.exec()

    def unload(self):
        """Remove everything initGui/initProcessing added."""
        if self.install_action is not None:
            self.iface.removePluginMenu(PLUGINS_MENU, self.install_action)
            self.install_action.deleteLater()
            self.install_action = None
        if self.layer_menu is not None:
            self.layer_menu.remove()
            self.layer_menu = None
        if self.provider is not None:
            # The registry owns and deletes the provider.
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
