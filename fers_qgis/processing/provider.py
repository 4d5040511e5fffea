"""The FERS Processing provider: the toolbox group, the `fers:` algorithm ids, GeoTIFF-only outputs."""
from qgis.core import QgsProcessingProvider

from ..about import PLUGIN_ICON_PATH, plugin_icon, plugin_version
from .algorithms import ALGORITHMS


class FersProvider(QgsProcessingProvider):
    """Provides the FERS algorithms to the toolbox, batch runs, models and qgis_process."""

    def id(self):
        return "fers"

    def name(self):
        return "FERS"

    def longName(self):  # noqa: N802 (QGIS API)
        return "FERS anomaly detection"

    def versionInfo(self):  # noqa: N802 (QGIS API)
        return plugin_version()

    def icon(self):
        return plugin_icon()

    def svgIconPath(self):  # noqa: N802 (QGIS API)
        return PLUGIN_ICON_PATH

    def loadAlgorithms(self):  # noqa: N802 (QGIS API)
        for algorithm_class in ALGORITHMS:
            self.addAlgorithm(algorithm_class())

    def supportedOutputRasterLayerExtensions(self):  # noqa: N802 (QGIS API)
        # The core writes GeoTIFF only; offering other extensions would write GeoTIFFs under misleading names.
        return ["tif"]

    def defaultRasterFileExtension(self):  # noqa: N802 (QGIS API)
        return "tif"

    def supportsNonFileBasedOutput(self):  # noqa: N802 (QGIS API)
        return False
