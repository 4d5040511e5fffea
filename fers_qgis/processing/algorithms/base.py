"""What every FERS algorithm declares the same way: identity, group, translation and instance creation."""
from qgis.core import QgsProcessingAlgorithm
from qgis.PyQt.QtCore import QCoreApplication

from ..checks import ParameterChecks


class FersAlgorithm(ParameterChecks, QgsProcessingAlgorithm):
    """Base of the provider's algorithms: subclasses set the class attributes below and declare parameters."""

    ALGORITHM_ID = ""
    DISPLAY_NAME = ""
    TAGS = ""
    SHORT_DESCRIPTION = ""

    def tr(self, text):
        return QCoreApplication.translate(type(self).__name__, text)

    def createInstance(self):  # noqa: N802 (QGIS API)
        return type(self)()

    def name(self):
        return self.ALGORITHM_ID

    def displayName(self):  # noqa: N802 (QGIS API)
        return self.tr(self.DISPLAY_NAME)

    def group(self):
        return self.tr("Anomaly detection")

    def groupId(self):  # noqa: N802 (QGIS API)
        return "anomalydetection"

    def tags(self):
        return self.tr(self.TAGS).split(",")

    def shortDescription(self):  # noqa: N802 (QGIS API)
        return self.tr(self.SHORT_DESCRIPTION)
