"""How FERS algorithms hand QGIS raster layers to the core, which opens raster files with GDAL."""
import os

from qgis.core import QgsProcessingException, QgsRasterLayer


def raster_file(layer: QgsRasterLayer, parameter_description: str) -> str:
    """The raster file behind a layer, or a QgsProcessingException saying why the core cannot read this layer."""
    source = layer.source()
    if layer.providerType() != "gdal" or not os.path.isfile(source):
        # Web services, database rasters and sub-datasets (GPKG:..., NETCDF:..., /vsizip/...) are not plain files.
        raise QgsProcessingException(
            f"{parameter_description}: the layer '{layer.name()}' is not a raster file on disk ({source}). "
            f"FERS algorithms read raster files directly: save the layer as a GeoTIFF first "
            f"(right-click > Export > Save As...).")
    return source
