"""What every FERS algorithm declares the same way: identity, group, help link, icon, translation, instance
creation, and how optional outputs are read."""
from typing import Dict, Optional, Sequence

from qgis.core import (
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingOutputLayerDefinition,
    QgsProperty,
)
from qgis.PyQt.QtCore import QCoreApplication

from ...about import algorithm_icon, algorithm_icon_path, help_url
from ...compat import PARAMETER_OPTIONAL
from ..checks import ParameterChecks
from ..layers import raster_file, virtual_file_layer


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
    ICON = ""          # file name in resources/icons
    HELP_SECTION = ""  # anchor of the algorithm's section in the README

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

    def helpUrl(self):  # noqa: N802 (QGIS API)
        return help_url(self.HELP_SECTION)

    def icon(self):
        return algorithm_icon(self.ICON)

    def svgIconPath(self):  # noqa: N802 (QGIS API)
        return algorithm_icon_path(self.ICON)

    def raw_output(self, parameters, name, context) -> str:
        """What the user typed for an output, unresolved: '' when left empty (the batch dialog and the model
        designer pass an empty QgsProcessingOutputLayerDefinition), 'TEMPORARY_OUTPUT', 'memory:' or a path."""
        value = parameters.get(name)
        if isinstance(value, QgsProcessingOutputLayerDefinition):
            value = value.sink
        if isinstance(value, QgsProperty):
            value = value.valueAsString(context.expressionContext())[0]
        return value if isinstance(value, str) else ""

    def output_requested(self, parameters, name, context) -> bool:
        return bool(self.raw_output(parameters, name, context))

    def resolve_outputs(self, parameters, context, names: Sequence[str]) -> Dict[str, Optional[str]]:
        """Each requested raster output's path, resolved once per run (a temporary output gets a new path at
        every resolution, and each one is queued for loading); None for those not requested."""
        return {name: self.parameterAsOutputLayer(parameters, name, context) or None
                if self.output_requested(parameters, name, context) else None for name in names}

    def given_name(self, parameters, name: str) -> str:
        """The layer name the model designer gives a model output (its destinationName), or ''."""
        given = getattr(parameters.get(name), "destinationName", "") or ""
        return given if given != self.parameterDefinition(name).description() else ""

    def is_temporary(self, parameters, name, context) -> bool:
        return self.raw_output(parameters, name, context) == QgsProcessing.TEMPORARY_OUTPUT

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS API)
        """QGIS's checks, with a GDAL virtual file path at a raster parameter (a raster in a ZIP) given as the
        layer it opens: QGIS 3.22 would answer that such a path is "not found"."""
        layers = {definition.name(): virtual_file_layer(parameters.get(definition.name()), context)
                  for definition in self.parameterDefinitions() if definition.type() == "raster"}
        return super().checkParameterValues(
            dict(parameters, **{name: layer for name, layer in layers.items() if layer is not None}), context)

    def parameterAsRasterLayer(self, parameters, name, context):  # noqa: N802 (QGIS API)
        """QGIS's reading of a raster parameter, which also takes a GDAL virtual file path (a raster in a ZIP)."""
        return super().parameterAsRasterLayer(parameters, name, context) or \
            virtual_file_layer(parameters.get(name), context)

    def raster_source(self, parameters, name, context):
        """(layer, file path) of a raster parameter; (None, None) for an empty optional one."""
        layer = self.parameterAsRasterLayer(parameters, name, context)
        definition = self.parameterDefinition(name)
        if layer is None:
            if definition.flags() & PARAMETER_OPTIONAL:
                return None, None
            raise QgsProcessingException(self.invalidRasterError(parameters, name))
        return layer, raster_file(layer, definition.description())
