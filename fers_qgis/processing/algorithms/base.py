"""What every FERS algorithm declares the same way: identity, group, translation and instance creation."""
from qgis.core import QgsProcessingAlgorithm, QgsProcessingException, QgsProcessingParameterDefinition
from qgis.PyQt.QtCore import QCoreApplication

from ..checks import ParameterChecks
from ..layers import raster_file


# Cited at the end of every algorithm's help.
REFERENCES = (
    "<p><b>References</b><br>"
    "RX: I. S. Reed and X. Yu, Adaptive multiple-band CFAR detection of an optical pattern with unknown spectral "
    "distribution, IEEE Trans. ASSP 38(10), 1990.<br>"
    "FERD: reverse distillation for hyperspectral anomaly detection, and the HAD100 benchmark (Jin et al.).<br>"
    "FERS: Jin, Tang, Zhu, Guo, The Rebellious Student: train-once background enhancement for hyperspectral "
    "anomaly detection, arXiv 2510.18781, 2025.</p>")


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

    def raster_source(self, parameters, name, context):
        """(layer, file path) of a raster parameter; (None, None) for an empty optional one."""
        layer = self.parameterAsRasterLayer(parameters, name, context)
        definition = self.parameterDefinition(name)
        if layer is None:
            if definition.flags() & QgsProcessingParameterDefinition.FlagOptional:
                return None, None
            raise QgsProcessingException(self.invalidRasterError(parameters, name))
        return layer, raster_file(layer, definition.description())
