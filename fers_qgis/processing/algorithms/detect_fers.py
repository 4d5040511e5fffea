"""Detect anomalies (FERS): the Processing face of `fers_qgis.core.enhancement.detect_fers`."""
from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ...compat import NUMBER_INTEGER
from ...core.enhancement import FersOptions, detect_fers
from ...core.errors import FersError
from ...core.onnx_runtime import model_label
from ...core.progress import Stage
from ..feedback import FeedbackProgress
from ..product_input import checks_product_input, imports_product_input
from .base import REFERENCES, FersAlgorithm
from .decisions import DECISION_HELP, AnomalyDecisions
from .detect_rx import LOCAL_RX_HELP
from .fill_parameter import FILL_HELP, UndeclaredFillParameter
from .fers_model import MODEL_HELP, FersModelParameters

# Enum entries in order: label, the words naming the run's layers, then the core's (detector, fusion); fusion None
# is the model's own rule. "Image" is the model's normalised bands; "features" the two networks' outputs.
DETECTOR_CHOICES = (
    ("FERS-RX (default): RX on the FERS-enhanced image, with the model's fusion rule", "FERS-RX", ("fers", None)),
    ("FERS-RX product rule: RX(image + spatial features) x RX(image + spectral features), each scaled 0-1",
     "FERS-RX product rule", ("fers", "product")),
    ("FERS + local RX: local RX on the FERS-enhanced image", "FERS local RX", ("fers-local", None)),
    ("Plain RX on the model's bands (for comparison)", "plain RX on model bands", ("rx", None)),
    ("FERS spectral branch only: RX on image + spectral features", "FERS spectral branch", ("fers-spectral", None)),
    ("FERS spatial branch only: RX on image + spatial features", "FERS spatial branch", ("fers-spatial", None)),
    ("FERS-RX product rule with plain RX: RX(image) x RX(image + spatial features) x RX(image + spectral "
     "features), each scaled 0-1", "FERS-RX product rule with plain RX", ("fers", "product-rx")),
)  # new entries go last: saved models and batch files store the index


class DetectAnomaliesFers(UndeclaredFillParameter, FersModelParameters, AnomalyDecisions, FersAlgorithm):
    """Enhances the background with a FERS model set, then scores each pixel with RX."""

    ALGORITHM_ID = "detectanomaliesfers"
    DISPLAY_NAME = "Detect anomalies (FERS)"
    TAGS = "fers,rx,deep learning,onnx,background,enhancement,anomaly,hyperspectral"
    SHORT_DESCRIPTION = "Scores each pixel with RX after enhancing the background with a FERS model."
    ICON = "detect_fers.svg"
    HELP_SECTION = "detect-anomalies-fers"

    INPUT = "INPUT"
    DETECTOR = "DETECTOR"
    INNER_WINDOW = "INNER_WINDOW"
    OUTER_WINDOW = "OUTER_WINDOW"
    SCALE = "SCALE"
    MASK = "MASK"
    OUTPUT = "OUTPUT"

    def shortHelpString(self):  # noqa: N802 (QGIS API)
        return self.tr(
            "Scores every pixel of a hyperspectral raster by how anomalous it is, after enhancing the image's "
            "background with FERS: two small networks trained once on anomaly-free scenes add a spectral and a "
            "spatial feature map to the normalised image, making the background more regular, so that the RX "
            "detector separates anomalies from it better. No per-scene training or tuning is needed.\n\n"
            "<b>Input</b>: a hyperspectral raster (any GDAL format on disk, many bands; wavelengths used when "
            "present).\n") + self.tr(MODEL_HELP) + self.tr(
            "<b>Detector</b>: <i>FERS-RX</i> (default) with the model set's own fusion rule (the shipped sets: the "
            "product rule with plain RX); <i>product rule</i> forces the published 50-band fusion, the product of "
            "the two single-branch RX maps; <i>product rule with plain RX</i> also multiplies by RX on the model's "
            "bands, so that a pixel scores high only where the unenhanced bands agree; <i>local RX</i> takes each "
            "pixel's background from the ring between the inner and outer windows (odd sizes, defaults 3 and 15); "
            "<i>plain RX</i> on the model's bands shows what the enhancement adds; the single-branch detectors are "
            "for comparison.\n"
        ) + self.tr(LOCAL_RX_HELP) + self.tr(
            "<b>Scale scores to 0-1</b> (default off): min-max scaling over the valid pixels.\n"
            "<b>Valid-pixel mask</b> (optional input): a raster whose non-zero pixels are the ones to use (on "
            "another grid, resampled onto the input's grid).\n") + \
            self.tr(FILL_HELP) + self.tr(DECISION_HELP) + self.tr(
            "\nPixels that are nodata, NaN or Inf in any band the model reads, or masked out, are written as "
            "nodata (-9999). Scores are a single-band Float32 GeoTIFF on the input's grid, styled on a perceptual "
            "ramp stretched between the 2nd and 98th percentiles. Memory stays bounded on rasters of any size.") + \
            REFERENCES

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Input raster (hyperspectral)")))
        self.add_model_parameters()
        self.addParameter(QgsProcessingParameterEnum(
            self.DETECTOR, self.tr("Detector"), options=[self.tr(label) for label, _, _ in DETECTOR_CHOICES],
            defaultValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            self.INNER_WINDOW, self.tr("Inner (guard) window size, pixels (local RX)"),
            type=NUMBER_INTEGER, defaultValue=3, minValue=1))
        self.addParameter(QgsProcessingParameterNumber(
            self.OUTER_WINDOW, self.tr("Outer window size, pixels (local RX)"),
            type=NUMBER_INTEGER, defaultValue=15, minValue=3))
        self.addParameter(QgsProcessingParameterBoolean(self.SCALE, self.tr("Scale scores to 0-1"),
                                                        defaultValue=False))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.MASK, self.tr("Valid-pixel mask (optional input; non-zero = use the pixel)"), optional=True))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("FERS anomaly scores")))
        self.add_decision_parameters()
        self.add_undeclared_fill_parameter()

    def _options(self, parameters, context) -> FersOptions:
        detector, fusion = DETECTOR_CHOICES[self.parameterAsEnum(parameters, self.DETECTOR, context)][2]
        return FersOptions(detector=detector, fusion=fusion,
                           inner_window=self.parameterAsInt(parameters, self.INNER_WINDOW, context),
                           outer_window=self.parameterAsInt(parameters, self.OUTER_WINDOW, context),
                           scale_scores=self.parameterAsBoolean(parameters, self.SCALE, context),
                           use_gpu=self.use_gpu(parameters, context),
                           undeclared_fill=self.undeclared_fill(parameters, context))

    @checks_product_input
    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS API)
        problem = self.unreadable_raster(parameters, context, (self.INPUT, self.MASK))
        if problem:
            return False, problem
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        problem = self._window_problem(parameters, context) or \
            self.geotiff_problem(parameters, context, (self.OUTPUT,)) or self.model_problem(parameters, context) \
            or self.decision_problem(parameters, context)
        return (False, problem) if problem else (True, "")

    def _window_problem(self, parameters, context):
        options = self._options(parameters, context)
        if options.detector != "fers-local":
            return ""
        return self.window_problem(options.inner_window, options.outer_window)

    @imports_product_input
    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        layer, input_path = self.raster_source(parameters, self.INPUT, context)
        _, mask_path = self.raster_source(parameters, self.MASK, context)
        outputs = self.resolve_outputs(parameters, context, (self.OUTPUT, self.ANOMALY_MASK))
        output_path = outputs[self.OUTPUT]
        model_path = self.model_path(parameters, context)
        options = self._options(parameters, context)

        progress = FeedbackProgress(feedback)
        scoring_end = 0.85 if self.wants_decisions(parameters, context) else 1.0
        try:
            summary = detect_fers(input_path, output_path, model_path, options, mask_path,
                                  Stage(progress, 0.0, scoring_end))
        except FersError as error:  # Cancelled and MissingDependency included: their messages say what happened
            raise QgsProcessingException(str(error)) from error

        progress.info(self.tr("Scored {} valid pixels with {} model bands in {:.1f} s.").format(
            summary.valid_pixels, summary.bands_used, summary.seconds))
        label = self._run_label(layer, self.parameterAsEnum(parameters, self.DETECTOR, context), options)
        layers = self.run_layers(parameters, context, label, output_path, model_label(model_path))
        decisions = self.write_decisions(parameters, context, Stage(progress, scoring_end, 1.0), output_path,
                                         outputs[self.ANOMALY_MASK], layer, layers)
        return {self.OUTPUT: output_path, **decisions}

    @staticmethod
    def _run_label(layer, choice: int, options: FersOptions) -> str:
        """The input and the detector (with its windows when local): with the model, what tells runs apart."""
        words = DETECTOR_CHOICES[choice][1]
        if options.detector == "fers-local":
            words += f" {options.inner_window}/{options.outer_window}"
        return f"{layer.name()} {words}"
