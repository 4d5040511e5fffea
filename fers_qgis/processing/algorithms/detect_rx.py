"""Detect anomalies (RX): the Processing face of `fers_qgis.core.detection.detect_rx`."""
import os

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterBand,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)
from qgis.PyQt.QtCore import QCoreApplication

from ...core.detection import DETECTORS, RxOptions, detect_rx
from ...core.errors import FersError
from ..feedback import FeedbackProgress
from ..layers import raster_file

# Enum labels in the order of the core's DETECTORS: the enum index selects the core's detector name.
DETECTOR_LABELS = {
    "global": "Global (background: the whole image)",
    "local": "Local (background: a window around each pixel)",
}


class DetectAnomaliesRx(QgsProcessingAlgorithm):
    """Scores each pixel with the RX detector and writes a single-band anomaly-score GeoTIFF."""

    INPUT = "INPUT"
    BANDS = "BANDS"
    DETECTOR = "DETECTOR"
    INNER_WINDOW = "INNER_WINDOW"
    OUTER_WINDOW = "OUTER_WINDOW"
    MASK = "MASK"
    OUTPUT = "OUTPUT"

    def tr(self, text):
        return QCoreApplication.translate("DetectAnomaliesRx", text)

    def createInstance(self):  # noqa: N802 (QGIS API)
        return DetectAnomaliesRx()

    def name(self):
        return "detectanomaliesrx"

    def displayName(self):  # noqa: N802 (QGIS API)
        return self.tr("Detect anomalies (RX)")

    def group(self):
        return self.tr("Anomaly detection")

    def groupId(self):  # noqa: N802 (QGIS API)
        return "anomalydetection"

    def tags(self):
        return self.tr("rx,reed-xiaoli,mahalanobis,anomaly,outlier,target,hyperspectral,spectral").split(",")

    def shortDescription(self):  # noqa: N802 (QGIS API)
        return self.tr("Scores each pixel by the Mahalanobis distance of its spectrum to the background (RX).")

    def shortHelpString(self):  # noqa: N802 (QGIS API)
        return self.tr(
            "Scores every pixel by how unusual its spectrum is. The RX (Reed-Xiaoli) detector computes the squared "
            "Mahalanobis distance between a pixel's spectrum and the mean spectrum of its background, using the "
            "background's covariance: high scores are anomalies.\n\n"
            "<b>Detector</b>: <i>Global</i> takes every valid pixel of the image as background (fast; finds "
            "pixels unlike the scene). <i>Local</i> takes the pixels between an inner and an outer window "
            "centred on each pixel (slower; finds pixels unlike their surroundings).\n"
            "<b>Inner / outer window</b>: odd sizes in pixels, used by the local detector. The inner (guard) "
            "window keeps the target's own pixels out of its background; the outer window must be larger.\n"
            "<b>Bands</b>: the bands to use; none selected means all bands.\n"
            "<b>Mask</b>: optional raster on the same pixel grid; only pixels where it is non-zero are used.\n\n"
            "Pixels that are nodata or NaN in any used band, or masked out, take no part in the statistics. The "
            "output is a single-band Float32 GeoTIFF on the input's grid, with nodata (-9999) where no score "
            "was computed."
        )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Input raster (hyperspectral)")))
        self.addParameter(QgsProcessingParameterBand(
            self.BANDS, self.tr("Bands to use (none selected: all bands)"), defaultValue=None,
            parentLayerParameterName=self.INPUT, optional=True, allowMultiple=True))
        self.addParameter(QgsProcessingParameterEnum(
            self.DETECTOR, self.tr("Detector"), options=[self.tr(DETECTOR_LABELS[name]) for name in DETECTORS],
            defaultValue=DETECTORS.index("global")))
        self.addParameter(QgsProcessingParameterNumber(
            self.INNER_WINDOW, self.tr("Inner (guard) window size, pixels (local detector)"),
            type=QgsProcessingParameterNumber.Integer, defaultValue=3, minValue=1))
        self.addParameter(QgsProcessingParameterNumber(
            self.OUTER_WINDOW, self.tr("Outer window size, pixels (local detector)"),
            type=QgsProcessingParameterNumber.Integer, defaultValue=15, minValue=3))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.MASK, self.tr("Mask (non-zero: pixels to use)"), optional=True))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("RX anomaly scores")))

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS API)
        problem = self._unreadable_raster(parameters, context)
        if problem:
            return False, problem
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        problem = self._window_problem(parameters, context) or self._output_problem(parameters, context)
        return (False, problem) if problem else (True, "")

    def _unreadable_raster(self, parameters, context):
        """QGIS reports an existing but unreadable raster file as "not found"; say what is wrong instead."""
        for name in (self.INPUT, self.MASK):
            value = parameters.get(name)
            if isinstance(value, str) and os.path.isfile(value) and \
                    self.parameterAsRasterLayer(parameters, name, context) is None:
                return self.tr("{}: {} cannot be read as a raster (not an image format GDAL knows, or a damaged "
                               "file).").format(self.parameterDefinition(name).description(), value)
        return ""

    def _window_problem(self, parameters, context):
        """The local detector's windows must be odd and nested, as the core requires (the global one has none)."""
        if DETECTORS[self.parameterAsEnum(parameters, self.DETECTOR, context)] != "local":
            return ""
        inner = self.parameterAsInt(parameters, self.INNER_WINDOW, context)
        outer = self.parameterAsInt(parameters, self.OUTER_WINDOW, context)
        if inner % 2 == 0 or outer % 2 == 0:
            return self.tr("Window sizes must be odd so that each window is centred on its pixel; got inner {} "
                           "and outer {}.").format(inner, outer)
        if outer <= inner:
            return self.tr("The outer window ({}) must be larger than the inner window ({}): the background is "
                           "the ring between them.").format(outer, inner)
        return ""

    def _output_problem(self, parameters, context):
        """The core writes GeoTIFF only; another extension would give a GeoTIFF a misleading name."""
        output_path = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        if output_path and os.path.splitext(output_path)[1].lower() not in (".tif", ".tiff"):
            return self.tr("The output is written as GeoTIFF: give it a .tif name (got {}).").format(output_path)
        return ""

    def _band_numbers(self, parameters, context):
        """The selected band numbers; also accepts the comma list `BANDS=1,2,3` that qgis_process users type."""
        value = parameters.get(self.BANDS)
        if isinstance(value, str) and "," in value:
            # QGIS splits multiple-band strings on ';' only and would read "1,2,3" as band 0.
            parameters = dict(parameters)
            parameters[self.BANDS] = value.replace(",", ";")
        return tuple(self.parameterAsInts(parameters, self.BANDS, context))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None:
            raise QgsProcessingException(self.invalidRasterError(parameters, self.INPUT))
        mask_layer = self.parameterAsRasterLayer(parameters, self.MASK, context)
        options = RxOptions(
            detector=DETECTORS[self.parameterAsEnum(parameters, self.DETECTOR, context)],
            inner_window=self.parameterAsInt(parameters, self.INNER_WINDOW, context),
            outer_window=self.parameterAsInt(parameters, self.OUTER_WINDOW, context),
            bands=self._band_numbers(parameters, context) or None,
        )
        input_path = raster_file(layer, self.parameterDefinition(self.INPUT).description())
        mask_path = None
        if mask_layer is not None:
            mask_path = raster_file(mask_layer, self.parameterDefinition(self.MASK).description())
        output_path = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)

        progress = FeedbackProgress(feedback)
        try:
            summary = detect_rx(input_path, output_path, options, mask_path, progress)
        except FersError as error:  # Cancelled included: its message says the run was cancelled
            raise QgsProcessingException(str(error)) from error

        progress.info(self.tr("Scored {} valid pixels using {} bands in {:.1f} s.").format(
            summary.valid_pixels, summary.bands_used, summary.seconds))
        if context.willLoadLayerOnCompletion(output_path):
            details = context.layerToLoadOnCompletionDetails(output_path)
            details.name = self.tr("{} RX anomalies").format(layer.name())
        return {self.OUTPUT: output_path}
