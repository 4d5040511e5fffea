"""Detect anomalies (RX): the Processing face of `fers_qgis.core.detection.detect_rx`."""
from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterBand,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ...compat import NUMBER_INTEGER
from ...core.detection import DETECTORS, RxOptions, detect_rx
from ...core.errors import FersError
from ...core.progress import Stage
from ..feedback import FeedbackProgress
from ..product_input import checks_product_input, imports_product_input
from .base import REFERENCES, FersAlgorithm
from .decisions import DECISION_HELP, AnomalyDecisions
from .fill_parameter import FILL_HELP, UndeclaredFillParameter

# How local RX is made to work on many bands (core.rx.LocalBackgroundRule), for the help of every local detector.
LOCAL_RX_HELP = (
    "<b>Local RX on many bands</b>: the ring between the default windows (15 x 15 minus 3 x 3) holds 216 pixels, "
    "too few to estimate the covariance of 100-200 bands. So each ring models only the leading principal "
    "components of the whole image's background, one per ten ring pixels (21 with the default windows), and the "
    "other components are scored against the whole image's background; each ring's covariance is shrunk towards "
    "the whole image's, which counts as one ring pixel per component, so rings with fewer valid pixels lean on it "
    "more; and where fewer than two valid ring pixels per component remain (next to nodata, at the edge of a "
    "swath) the pixel is scored against the whole image's background: no score comes from a nearly singular "
    "window. Ring statistics are running sums, so larger windows cost little extra time.\n")

# Enum labels in the order of the core's DETECTORS: the enum index selects the core's detector name. Each label
# starts with the words that name the run's layers ("scene RX global anomaly scores").
DETECTOR_LABELS = {
    "global": "RX global (background: the whole image)",
    "local": "RX local (background: a window around each pixel)",
}


class DetectAnomaliesRx(UndeclaredFillParameter, AnomalyDecisions, FersAlgorithm):
    """Scores each pixel with the RX detector and writes a single-band anomaly-score GeoTIFF."""

    ALGORITHM_ID = "detectanomaliesrx"
    DISPLAY_NAME = "Detect anomalies (RX)"
    TAGS = "rx,reed-xiaoli,mahalanobis,anomaly,outlier,target,hyperspectral,spectral"
    SHORT_DESCRIPTION = "Scores each pixel by the Mahalanobis distance of its spectrum to the background (RX)."
    ICON = "detect_rx.svg"
    HELP_SECTION = "detect-anomalies-rx"

    INPUT = "INPUT"
    BANDS = "BANDS"
    DETECTOR = "DETECTOR"
    INNER_WINDOW = "INNER_WINDOW"
    OUTER_WINDOW = "OUTER_WINDOW"
    MASK = "MASK"
    OUTPUT = "OUTPUT"

    def shortHelpString(self):  # noqa: N802 (QGIS API)
        return self.tr(
            "Scores every pixel by how unusual its spectrum is. The RX (Reed-Xiaoli) detector computes the squared "
            "Mahalanobis distance between a pixel's spectrum and the mean spectrum of its background, using the "
            "background's covariance: high scores are anomalies.\n\n"
            "<b>Detector</b>: <i>RX global</i> (default) takes every valid pixel of the image as background (fast; "
            "finds pixels unlike the scene). <i>RX local</i> takes the pixels between an inner and an outer window "
            "centred on each pixel (slower; finds pixels unlike their surroundings).\n"
            "<b>Inner / outer window</b>: odd sizes in pixels, used by the local detector. The inner (guard) "
            "window keeps the target's own pixels out of its background; the outer window must be larger.\n") \
            + self.tr(LOCAL_RX_HELP) + self.tr(
            "<b>Bands</b>: the bands to use; none selected means all bands. From qgis_process or Python also as "
            "text: band numbers and ranges (1-50, 1-10,20-30) or wavelength ranges where the raster has band "
            "wavelengths (400-1000 nm, 0.4-1.0 um).\n"
            "<b>Valid-pixel mask</b> (optional input): a raster whose non-zero pixels are the ones to use. A mask "
            "on another grid is resampled onto the input's grid (nearest neighbour) when both are georeferenced.\n"
            "<b>Input</b>: any multi-band raster (hyperspectral or multispectral) that GDAL reads from disk.\n") \
            + self.tr(FILL_HELP) + self.tr(DECISION_HELP) + self.tr(
            "\nPixels that are nodata, NaN or Inf in any used band, or masked out, take no part in the statistics. "
            "The output is a single-band Float32 GeoTIFF on the input's grid, with nodata (-9999) where no score "
            "was computed. Global RX reads the raster twice, block by block, so memory stays bounded; the "
            "covariance is inverted with an eigen-decomposition cutoff, so constant or duplicated bands are "
            "harmless.") + REFERENCES

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
            type=NUMBER_INTEGER, defaultValue=3, minValue=1))
        self.addParameter(QgsProcessingParameterNumber(
            self.OUTER_WINDOW, self.tr("Outer window size, pixels (local detector)"),
            type=NUMBER_INTEGER, defaultValue=15, minValue=3))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.MASK, self.tr("Valid-pixel mask (optional input; non-zero = use the pixel)"), optional=True))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("RX anomaly scores")))
        self.add_decision_parameters()
        self.add_undeclared_fill_parameter()

    @checks_product_input
    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS API)
        problem = self.unreadable_raster(parameters, context, (self.INPUT, self.MASK))
        if problem:
            return False, problem
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        problem = self._window_problem(parameters, context) or \
            self.geotiff_problem(parameters, context, (self.OUTPUT,)) or self.decision_problem(parameters, context)
        return (False, problem) if problem else (True, "")

    def _window_problem(self, parameters, context):
        """Only the local detector has windows."""
        if DETECTORS[self.parameterAsEnum(parameters, self.DETECTOR, context)] != "local":
            return ""
        return self.window_problem(self.parameterAsInt(parameters, self.INNER_WINDOW, context),
                                   self.parameterAsInt(parameters, self.OUTER_WINDOW, context))

    def _band_selection(self, parameters, context):
        """The selected band numbers, or the text qgis_process and Python users type ("1-50", "1,2,3",
        "400-1000 nm"), which the core reads: QGIS itself would read "1-50" or "1,2,3" as band 0."""
        value = parameters.get(self.BANDS)
        if isinstance(value, str):
            return value.strip() or None
        return tuple(self.parameterAsInts(parameters, self.BANDS, context)) or None

    @imports_product_input
    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        layer, input_path = self.raster_source(parameters, self.INPUT, context)
        _, mask_path = self.raster_source(parameters, self.MASK, context)
        options = RxOptions(
            detector=DETECTORS[self.parameterAsEnum(parameters, self.DETECTOR, context)],
            inner_window=self.parameterAsInt(parameters, self.INNER_WINDOW, context),
            outer_window=self.parameterAsInt(parameters, self.OUTER_WINDOW, context),
            bands=self._band_selection(parameters, context),
            undeclared_fill=self.undeclared_fill(parameters, context),
        )
        outputs = self.resolve_outputs(parameters, context, (self.OUTPUT, self.ANOMALY_MASK))
        output_path = outputs[self.OUTPUT]

        progress = FeedbackProgress(feedback)
        scoring_end = 0.85 if self.wants_decisions(parameters, context) else 1.0
        try:
            summary = detect_rx(input_path, output_path, options, mask_path, Stage(progress, 0.0, scoring_end))
        except FersError as error:  # Cancelled included: its message says the run was cancelled
            raise QgsProcessingException(str(error)) from error

        progress.info(self.tr("Scored {} valid pixels using {} bands in {:.1f} s.").format(
            summary.valid_pixels, summary.bands_used, summary.seconds))
        layers = self.run_layers(parameters, context, self._run_label(layer, options), output_path)
        decisions = self.write_decisions(parameters, context, Stage(progress, scoring_end, 1.0), output_path,
                                         outputs[self.ANOMALY_MASK], layer, layers)
        return {self.OUTPUT: output_path, **decisions}

    @staticmethod
    def _run_label(layer, options: RxOptions) -> str:
        """The input and the detector settings: what tells two runs' layers apart."""
        if options.detector == "global":
            return f"{layer.name()} RX global"
        return f"{layer.name()} RX local {options.inner_window}/{options.outer_window}"
