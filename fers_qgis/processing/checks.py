"""Parameter checks shared by the FERS algorithms, run in checkParameterValues before any work starts."""
import os

from ..core.detection import check_windows
from ..core.errors import InputError
from ..core.raster import envi_data_file
from .layers import is_gdal_virtual_path


class ParameterChecks:
    """Mixin for QgsProcessingAlgorithm subclasses: each check returns a message, or '' when all is well."""

    def unreadable_raster(self, parameters, context, names) -> str:
        """QGIS reports an existing but unreadable raster file, or a GDAL virtual path (a raster in a ZIP) GDAL
        cannot open, as "not found"; say what is wrong instead."""
        for name in names:
            value = parameters.get(name)
            if isinstance(value, str) and os.path.isfile(value) and \
                    self.parameterAsRasterLayer(parameters, name, context) is None:
                data_file = envi_data_file(value)
                if data_file or value.lower().endswith(".hdr"):
                    return self.tr("{}: {} is an ENVI header; choose the data file it describes ({}).").format(
                        self.parameterDefinition(name).description(), value,
                        data_file or self.tr("the file with the same name without .hdr"))
                return self.tr("{}: {} cannot be read as a raster (not an image format GDAL knows, or a damaged "
                               "file).").format(self.parameterDefinition(name).description(), value)
            if is_gdal_virtual_path(value) and self.parameterAsRasterLayer(parameters, name, context) is None:
                return self.tr("{}: GDAL cannot open {} (check the archive and the path of the raster inside it, "
                               "e.g. /vsizip/delivery.zip/scene.tif).").format(
                                   self.parameterDefinition(name).description(), value)
        return ""

    def geotiff_problem(self, parameters, context, names) -> str:
        """The core writes GeoTIFF only; another extension would give a GeoTIFF a misleading name."""
        for name in names:
            # A temporary output takes the provider's .tif; resolving it here would queue a second temporary file.
            if not self.output_requested(parameters, name, context) or self.is_temporary(parameters, name, context):
                continue
            path = self.parameterAsOutputLayer(parameters, name, context)
            if path and os.path.splitext(path)[1].lower() not in (".tif", ".tiff"):
                return self.tr("The output is written as GeoTIFF: give it a .tif name (got {}).").format(path)
        return ""

    @staticmethod
    def window_problem(inner: int, outer: int) -> str:
        """The core's rule for local-RX windows, as a message."""
        try:
            check_windows(inner, outer)
        except InputError as error:
            return str(error)
        return ""
