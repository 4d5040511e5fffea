"""The one place for names that differ between QGIS 3.22 (Qt5) and QGIS 4 (Qt6).

QGIS 3.30-3.38 moved many enums into ``Qgis`` (``Qgis.WkbType``, ``Qgis.ProcessingSourceType``...) and QGIS 4
drops the old homes; QGIS 3.22 has only the old ones. Each constant takes the ``Qgis`` form where this QGIS has it
and the 3.22 scoped form otherwise, so the rest of the plugin never branches on versions. The static check
(`scripts/check_qt6.py`) allows the old forms in this file only.
"""
from qgis import core
from qgis.core import Qgis, QgsField

try:  # Qt6 (QGIS 4) moved QAction to QtGui; Qt5's QtGui has none
    from qgis.PyQt.QtGui import QAction  # noqa: F401 (re-exported)
except ImportError:
    from qgis.PyQt.QtWidgets import QAction  # noqa: F401 (re-exported)


def _qgis_enum(enum_name: str, member: str, qgis_322_member):
    """``Qgis.<enum_name>.<member>`` where it exists, else ``qgis_322_member()`` (a callable, so the old home is
    only looked up on the versions that have it)."""
    enum = getattr(Qgis, enum_name, None)
    return getattr(enum, member) if enum is not None else qgis_322_member()


PARAMETER_OPTIONAL = _qgis_enum("ProcessingParameterFlag", "Optional",
                                lambda: core.QgsProcessingParameterDefinition.Flag.FlagOptional)
PARAMETER_ADVANCED = _qgis_enum("ProcessingParameterFlag", "Advanced",
                                lambda: core.QgsProcessingParameterDefinition.Flag.FlagAdvanced)
NUMBER_INTEGER = _qgis_enum("ProcessingNumberParameterType", "Integer",
                            lambda: core.QgsProcessingParameterNumber.Type.Integer)
NUMBER_DOUBLE = _qgis_enum("ProcessingNumberParameterType", "Double",
                           lambda: core.QgsProcessingParameterNumber.Type.Double)
FILE_PARAMETER_FILE = _qgis_enum("ProcessingFileParameterBehavior", "File",
                                 lambda: core.QgsProcessingParameterFile.Behavior.File)
SOURCE_VECTOR_POLYGON = _qgis_enum("ProcessingSourceType", "VectorPolygon",
                                   lambda: core.QgsProcessing.SourceType.TypeVectorPolygon)
WKB_MULTIPOLYGON = _qgis_enum("WkbType", "MultiPolygon", lambda: core.QgsWkbTypes.Type.MultiPolygon)
LAYER_RASTER = _qgis_enum("LayerType", "Raster", lambda: core.QgsMapLayerType.RasterLayer)
SHADER_INTERPOLATED = _qgis_enum("ShaderInterpolationMethod", "Linear",
                                 lambda: core.QgsColorRampShader.Type.Interpolated)
SHADER_CONTINUOUS = _qgis_enum("ShaderClassificationMethod", "Continuous",
                               lambda: core.QgsColorRampShader.ClassificationMode.Continuous)

# QgsField takes a QMetaType from QGIS 3.38 on (QGIS 4 only that); earlier versions only a QVariant type.
if Qgis.QGIS_VERSION_INT >= 33800:
    from qgis.PyQt.QtCore import QMetaType

    _FIELD_TYPES = {int: QMetaType.Type.Int, float: QMetaType.Type.Double, str: QMetaType.Type.QString}
else:
    from qgis.PyQt.QtCore import QVariant

    _FIELD_TYPES = {int: QVariant.Int, float: QVariant.Double, str: QVariant.String}


def new_field(name: str, python_type: type) -> QgsField:
    """An attribute field holding ``int``, ``float`` or ``str`` values."""
    return QgsField(name, _FIELD_TYPES[python_type])
