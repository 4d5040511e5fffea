"""The advanced parameter every algorithm that reads a scene's pixels shares: undeclared fill on or off."""
from qgis.core import QgsProcessingParameterBoolean

from ...compat import PARAMETER_ADVANCED

FILL_HELP = (
    "<b>Pixels with one value in every band are fill</b> (advanced, default on): swaths are often delivered with "
    "their fill (e.g. 0 in every band) undeclared; such pixels are left out and the log says how many. Bad bands "
    "(flagged by an ENVI bad-band list, entirely nodata or NaN, constant, or invalid on a large share of the "
    "pixels) are left out and named in the log; GDAL masks (internal, .msk, alpha) mark fill too.\n")


class UndeclaredFillParameter:
    """Mixin for QgsProcessingAlgorithm subclasses: declares UNDECLARED_FILL and reads it."""

    UNDECLARED_FILL = "UNDECLARED_FILL"

    def add_undeclared_fill_parameter(self) -> None:
        parameter = QgsProcessingParameterBoolean(
            self.UNDECLARED_FILL, self.tr("Treat pixels with one value in every band as fill"), defaultValue=True)
        parameter.setFlags(parameter.flags() | PARAMETER_ADVANCED)
        self.addParameter(parameter)

    def undeclared_fill(self, parameters, context) -> bool:
        return self.parameterAsBoolean(parameters, self.UNDECLARED_FILL, context)
