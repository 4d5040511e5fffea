"""How FERS algorithms hand QGIS raster layers to the core, which opens raster files with GDAL."""
import os
from typing import Optional

from qgis.core import QgsProcessingException, QgsRasterLayer

# GDAL's virtual file systems: /vsizip/delivery.zip/scene.tif, /vsitar/..., /vsis3/..., /vsicurl/...
_GDAL_VIRTUAL_PREFIX = "/vsi"


def is_gdal_virtual_path(value) -> bool:
    return isinstance(value, str) and value.startswith(_GDAL_VIRTUAL_PREFIX)


def raster_file(layer: QgsRasterLayer, parameter_description: str) -> str:
    """The raster file behind a layer (a file on disk, or a GDAL virtual file such as a raster inside a ZIP), or a
    QgsProcessingException saying why the core cannot read this layer."""
    source = layer.source()
    readable = os.path.isfile(source) or is_gdal_virtual_path(source)
    if layer.providerType() != "gdal" or not readable:
        # Web services, database rasters and sub-datasets (GPKG:..., NETCDF:...) are not raster files.
        raise QgsProcessingException(
            f"{parameter_description}: the layer '{layer.name()}' is not a raster file ({source}). "
            f"FERS algorithms read raster files directly: save the layer as a GeoTIFF first "
            f"(right-click > Export > Save As...).")
    return source


def virtual_file_layer(value, context) -> Optional[QgsRasterLayer]:
    """The layer for a GDAL virtual file path given as a parameter value (``/vsizip/delivery.zip/scene.tif``, as
    many portals deliver), kept in the run's temporary layer store; None for any other value or one GDAL cannot
    open. QGIS 3.22 itself loads a layer from a string only when the string names a file that exists."""
    if not is_gdal_virtual_path(value):
        return None
    store = context.temporaryLayerStore()
    for layer in store.mapLayers().values():
        if layer.source() == value and isinstance(layer, QgsRasterLayer):
            return layer
    layer = QgsRasterLayer(value, os.path.basename(value), "gdal")
    if not layer.isValid():
        return None
    store.addMapLayer(layer)
    return layer
