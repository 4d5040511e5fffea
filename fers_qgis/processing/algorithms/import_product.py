"""Import hyperspectral product: the Processing face of `fers_qgis.core.products.import_product`."""
import os

from qgis.core import (QgsProcessingException, QgsProcessingParameterEnum, QgsProcessingParameterFile,
                       QgsProcessingParameterRasterDestination)

from ...compat import FILE_PARAMETER_FILE
from ...core.errors import FersError
from ...core.products import MAP_GRID, SENSOR_GEOMETRY, container_file, describe_product, import_product
from ..feedback import FeedbackProgress
from .base import FersAlgorithm

# The format specifications the import follows, cited at the end of its help.
PRODUCT_REFERENCES = (
    "<p><b>References</b><br>"
    "EMIT L2A Estimated Surface Reflectance and Uncertainty and Masks, Product User Guide (NASA JPL, LP DAAC).<br>"
    "EnMAP HSI Level 2A product specification, METADATA.XML band characterisation (DLR).<br>"
    "PRISMA Products Specification Document, L2D HDF-EOS5 (ASI).<br>"
    "AVIRIS-NG / AVIRIS-3 L2 reflectance ENVI deliveries (NASA JPL).</p>")
PRODUCT_FILES = ("Hyperspectral products (*.nc *.NC *.he5 *.HE5 *.h5 *.hdf5 *.xml *.XML *.zip *.ZIP *.hdr *.HDR "
                 "*.tif *.TIF *.img *.bsq *.BSQ *.bil *.BIL *.bip *.BIP *.dat);;All files (*)")


class ImportHyperspectralProduct(FersAlgorithm):
    """Writes a sensor product as a tiled GeoTIFF with wavelengths, FWHM and bad-band flags."""

    ALGORITHM_ID = "importhyperspectralproduct"
    DISPLAY_NAME = "Import hyperspectral product"
    TAGS = "import,emit,enmap,prisma,aviris,netcdf,hdf5,he5,envi,glt,orthorectify,wavelength,hyperspectral"
    SHORT_DESCRIPTION = "Writes an EMIT, EnMAP, PRISMA or AVIRIS product as a GeoTIFF every algorithm reads."
    ICON = "import_product.svg"
    HELP_SECTION = "import-hyperspectral-product"

    INPUT = "INPUT"
    GEOMETRY = "GEOMETRY"
    OUTPUT = "OUTPUT"
    # (label, core geometry); the first is the default.
    GEOMETRY_CHOICES = (("Map grid (orthorectified with the product's geometry lookup table)", MAP_GRID),
                        ("Sensor geometry (the swath as recorded, placed by ground control points)",
                         SENSOR_GEOMETRY))

    def group(self):
        return self.tr("Import")

    def groupId(self):  # noqa: N802 (QGIS API)
        return "import"

    def shortHelpString(self):  # noqa: N802 (QGIS API)
        return self.tr(
            "Reads a hyperspectral sensor product as delivered and writes it as a tiled Float32 GeoTIFF in "
            "ascending wavelength order, with each band's wavelength (nm), FWHM and bad-band flag (bbl, also in "
            "the ENVI metadata domain that EnMAP-Box reads), nodata -9999, CRS and geotransform.\n\n"
            "<b>Product</b>: one of\n"
            "- <i>EMIT L2A reflectance</i> (.nc): orthorectified onto the product's map grid with its geometry "
            "lookup table (GLT); bands flagged in good_wavelengths become bad bands.\n"
            "- <i>EMIT L2A mask</i> (.nc, the granule's MASK file): written as a valid-pixel mask (1 = usable, 0 "
            "= flagged by EMIT's aggregate flag: cloud, cirrus, spacecraft, dilated cloud; or no data) on the "
            "grid the reflectance import writes with the same geometry; give it as the detection algorithms' "
            "Valid-pixel mask.\n"
            "- <i>EnMAP L2A</i>: the delivery ZIP as downloaded (read in place), the METADATA.XML, or the "
            "SPECTRAL_IMAGE beside it (GeoTIFF or ENVI BSQ/BIL/BIP); numbers become reflectance with each band's "
            "gain and offset; bands whose statistics show no data are flagged bad.\n"
            "- <i>PRISMA L2D</i> (.he5): VNIR and SWIR cubes scaled with L2Scale*, merged in ascending "
            "wavelength order and georeferenced from Epsg_Code and the corner coordinates; unused bands "
            "(wavelength 0) are left out and SWIR bands overlapping the VNIR range are flagged bad.\n"
            "- <i>AVIRIS-NG / AVIRIS-3</i> ENVI reflectance (the data file or its .hdr): wavelengths in nm or "
            "um, bbl, fill -9999 and map info.\n"
            "- a NetCDF/HDF5 file with one reflectance cube whose band dimension is named (bands, wavelength).\n"
            "Bands without two different values over the valid pixels (no data, zeroed) are flagged bad too; the "
            "log lists every flagged band and why.\n\n"
            "<b>Geometry</b> (EMIT): the map grid is what other map layers line up with pixel for pixel, but a "
            "rotated swath fills about half of it with fill, and the GLT's nearest-pixel lookup repeats some "
            "swath pixels and skips others. <i>Sensor geometry</i> writes the swath as recorded: every pixel "
            "once, no fill, the image FERS's networks were trained on (not a rotated one), georeferenced by "
            "ground control points from the product's latitude and longitude; QGIS places it on the map, and "
            "every FERS output and anomaly object keeps that georeferencing. The detection algorithms use it when "
            "given an EMIT file directly. Other products are written as delivered either way.\n\n"
            "GDAL 3.6 (Debian 12) cannot orthorectify EMIT (GDAL 3.8) nor georeference PRISMA's HDF-EOS5 (GDAL "
            "3.7): this algorithm does both itself. The detection algorithms also accept EMIT, PRISMA and "
            "NetCDF/HDF5 files directly by running this import into a temporary file first (EMIT in sensor "
            "geometry).") + PRODUCT_REFERENCES

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        self.addParameter(QgsProcessingParameterFile(
            self.INPUT, self.tr("Product file (EMIT .nc, PRISMA .he5, EnMAP ZIP or METADATA.XML, AVIRIS ENVI)"),
            behavior=FILE_PARAMETER_FILE, fileFilter=PRODUCT_FILES))
        self.addParameter(QgsProcessingParameterEnum(
            self.GEOMETRY, self.tr("Geometry (EMIT)"), options=[self.tr(label) for label, _ in self.GEOMETRY_CHOICES],
            defaultValue=0))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Imported raster")))

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS API)
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        problem = self.geotiff_problem(parameters, context, (self.OUTPUT,)) or \
            self._product_problem(self.parameterAsFile(parameters, self.INPUT, context),
                                  self._geometry(parameters, context))
        return (False, problem) if problem else (True, "")

    def _geometry(self, parameters, context) -> str:
        return self.GEOMETRY_CHOICES[self.parameterAsEnum(parameters, self.GEOMETRY, context)][1]

    @staticmethod
    def _product_problem(input_path: str, geometry: str) -> str:
        """Recognise the product from its metadata now, so an unknown or incomplete one is refused before the run."""
        try:
            describe_product(input_path, geometry)
        except FersError as error:
            return str(error)
        return ""

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        input_path = self.parameterAsFile(parameters, self.INPUT, context)
        output_path = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        progress = FeedbackProgress(feedback)
        try:
            summary = import_product(input_path, output_path, progress, self._geometry(parameters, context))
        except FersError as error:  # Cancelled included: its message says the run was cancelled
            raise QgsProcessingException(str(error)) from error
        if context.willLoadLayerOnCompletion(output_path):
            context.layerToLoadOnCompletionDetails(output_path).name = self.given_name(parameters, self.OUTPUT) or \
                os.path.splitext(os.path.basename(container_file(input_path) or input_path))[0]
        progress.info(self.tr("Imported the {}: {} x {} pixels, {} bands ({} flagged bad), {} valid pixels, in "
                              "{:.1f} s.").format(summary.product_name, summary.width, summary.height,
                                                  summary.band_count, len(summary.bad_bands),
                                                  summary.valid_pixels, summary.seconds))
        return {self.OUTPUT: output_path}
