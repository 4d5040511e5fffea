"""NetCDF / HDF5 products given to a detection algorithm: imported to a temporary GeoTIFF for the run.

QGIS (through GDAL 3.6) cannot load an EMIT or PRISMA file as one image: a file with several variables is no
raster layer at all, and a lone reflectance(downtrack, crosstrack, bands) variable loads with image lines as bands.
The decorators below let an algorithm's INPUT be such a file (or a GDAL subdataset name of one, or a layer loaded
from one, as the right-click menu passes it): its checks see an
empty stand-in raster with the grid and band count of the import, and the run sees the imported GeoTIFF, deleted
after the run.
"""
import functools
import os
import shutil
import tempfile
import uuid
from typing import Optional

from osgeo import gdal
from qgis.core import QgsMapLayer, QgsProcessingException, QgsProcessingMultiStepFeedback, QgsProcessingUtils

from ..core import products
from ..core.errors import Cancelled, FersError
from .feedback import FeedbackProgress

INPUT = "INPUT"


def _refusal(value: str, error: Exception) -> str:
    return f"{value}: FERS cannot read this NetCDF/HDF5 file as one image. {error}"


def _product_source(parameters, context) -> Optional[str]:
    """The NetCDF/HDF5 file or subdataset name INPUT refers to (as a path, a layer id or a layer), else None."""
    value = parameters.get(INPUT)
    if isinstance(value, str) and products.container_file(value):
        return value
    if isinstance(value, str) and value:
        value = QgsProcessingUtils.mapLayerFromString(value, context, False)
    if isinstance(value, QgsMapLayer) and products.container_file(value.source()):
        return value.source()
    return None


def checks_product_input(check_parameter_values):
    """Decorator for checkParameterValues: a product at INPUT is checked as the raster its import will be."""
    @functools.wraps(check_parameter_values)
    def wrapper(self, parameters, context):
        value = _product_source(parameters, context)
        if value is None:
            return check_parameter_values(self, parameters, context)
        try:
            header = products.describe_scene_product(value)
        except FersError as error:
            return False, _refusal(value, error)
        # A file on disk: QGIS loads layers only from paths that exist (not from GDAL's /vsimem/).
        stand_in = os.path.join(QgsProcessingUtils.tempFolder(), f"fers_product_{uuid.uuid4().hex}.vrt")
        dataset = gdal.GetDriverByName("VRT").Create(stand_in, header.width, header.height,
                                                     len(header.wavelengths_nm), gdal.GDT_Float32)
        if header.gcps:
            dataset.SetGCPs(header.gcps, header.gcp_projection_wkt)
        else:
            dataset.SetGeoTransform(header.geotransform)
        if header.projection_wkt:
            dataset.SetProjection(header.projection_wkt)
        dataset = None
        try:
            return check_parameter_values(self, dict(parameters, **{INPUT: stand_in}), context)
        finally:
            _release(context, stand_in)
            os.remove(stand_in)
    return wrapper


def imports_product_input(process_algorithm):
    """Decorator for processAlgorithm: a product at INPUT is imported to a temporary GeoTIFF named after it, the
    run reads that file, and the file is deleted when the run ends, however it ends. The progress bar runs once
    over both steps (the import fills its first half)."""
    @functools.wraps(process_algorithm)
    def wrapper(self, parameters, context, feedback):
        value = _product_source(parameters, context)
        if value is None:
            return process_algorithm(self, parameters, context, feedback)
        folder = tempfile.mkdtemp(prefix="fers_import_", dir=QgsProcessingUtils.tempFolder())
        stem = os.path.splitext(os.path.basename(products.container_file(value)))[0]
        imported = os.path.join(folder, f"{stem}.tif")
        steps = QgsProcessingMultiStepFeedback(2, feedback)
        if feedback is not None and feedback.isCanceled():
            steps.cancel()  # it follows the parent's cancel signal, not a cancel that came before it
        progress = FeedbackProgress(steps)
        try:
            try:
                progress.info(f"Importing {value} to a temporary GeoTIFF first (step 1 of 2).")
                summary = products.import_scene(value, imported, progress)
            except Cancelled as error:
                raise QgsProcessingException(str(error)) from error
            except FersError as error:
                raise QgsProcessingException(_refusal(value, error)) from error
            progress.info(f"Imported the {summary.product_name}: {summary.width} x {summary.height} pixels, "
                          f"{summary.band_count} bands, in {summary.seconds:.1f} s. Step 2 of 2:")
            steps.setCurrentStep(1)
            return process_algorithm(self, dict(parameters, **{INPUT: imported}), context, steps)
        finally:
            _release(context, imported)
            shutil.rmtree(folder, ignore_errors=True)
    return wrapper


def _release(context, path: str) -> None:
    """Drop the layer Processing loaded from ``path``, so the file can be deleted (also on Windows)."""
    store = context.temporaryLayerStore()
    store.removeMapLayers([layer for layer in store.mapLayers().values() if layer.source() == path])
