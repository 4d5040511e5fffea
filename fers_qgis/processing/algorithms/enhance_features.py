"""Enhance background features (FERS): the Processing face of `fers_qgis.core.enhancement.enhance_features`."""
from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ...core.enhancement import enhance_features
from ...core.errors import FersError
from ...core.onnx_runtime import model_label
from ..feedback import FeedbackProgress
from ..product_input import checks_product_input, imports_product_input
from ..styling import RunLayers
from .base import REFERENCES, FersAlgorithm
from .fers_model import MODEL_HELP, FersModelParameters
from .fill_parameter import FILL_HELP, UndeclaredFillParameter


class EnhanceFeaturesFers(UndeclaredFillParameter, FersModelParameters, FersAlgorithm):
    """Writes the FERS-enhanced cube (normalised bands + spatial + spectral features), for any detector."""

    ALGORITHM_ID = "enhancefeatures"
    DISPLAY_NAME = "Enhance background features (FERS)"
    TAGS = "fers,features,deep learning,onnx,background,enhancement,hyperspectral"
    SHORT_DESCRIPTION = "Writes the image with a FERS model's spectral and spatial background features added."
    ICON = "enhance_features.svg"
    HELP_SECTION = "enhance-background-features-fers"

    INPUT = "INPUT"
    MASK = "MASK"
    OUTPUT = "OUTPUT"
    SPECTRAL_OUTPUT = "SPECTRAL_OUTPUT"
    SPATIAL_OUTPUT = "SPATIAL_OUTPUT"

    def shortHelpString(self):  # noqa: N802 (QGIS API)
        return self.tr(
            "Runs a FERS model set and writes the enhanced cube: the model's bands, normalised as the model was "
            "trained, plus its spatial and spectral feature maps (one Float32 band per model band, with the "
            "bands' names and wavelengths). Use it with any detector or classifier; <i>Detect anomalies (FERS)</i> "
            "runs RX on it directly.\n\n"
            "<b>Input</b>: a hyperspectral raster (any GDAL format on disk).\n") + self.tr(MODEL_HELP) + self.tr(
            "<b>Spectral / spatial features</b>: optional extra outputs with each feature map on its own.\n"
            "<b>Valid-pixel mask</b> (optional input): a raster whose non-zero pixels are the ones to use (on "
            "another grid, resampled onto the input's grid).\n") + \
            self.tr(FILL_HELP) + self.tr("\nNodata, NaN and masked pixels are written as nodata (-9999).") + REFERENCES

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Input raster (hyperspectral)")))
        self.add_model_parameters()
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.MASK, self.tr("Valid-pixel mask (optional input; non-zero = use the pixel)"), optional=True))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("FERS enhanced cube")))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.SPECTRAL_OUTPUT, self.tr("Spectral features"), optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.SPATIAL_OUTPUT, self.tr("Spatial features"), optional=True, createByDefault=False))
        self.add_undeclared_fill_parameter()

    @checks_product_input
    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS API)
        problem = self.unreadable_raster(parameters, context, (self.INPUT, self.MASK))
        if problem:
            return False, problem
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        problem = self.geotiff_problem(parameters, context, (self.OUTPUT, self.SPECTRAL_OUTPUT,
                                                             self.SPATIAL_OUTPUT)) or \
            self.model_problem(parameters, context)
        return (False, problem) if problem else (True, "")

    @imports_product_input
    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        layer, input_path = self.raster_source(parameters, self.INPUT, context)
        _, mask_path = self.raster_source(parameters, self.MASK, context)
        outputs = self.resolve_outputs(parameters, context, (self.OUTPUT, self.SPECTRAL_OUTPUT, self.SPATIAL_OUTPUT))
        model_path = self.model_path(parameters, context)

        progress = FeedbackProgress(feedback)
        try:
            summary = enhance_features(input_path, outputs[self.OUTPUT], model_path, mask_path,
                                       spectral_output=outputs[self.SPECTRAL_OUTPUT],
                                       spatial_output=outputs[self.SPATIAL_OUTPUT],
                                       use_gpu=self.use_gpu(parameters, context), progress=progress,
                                       undeclared_fill=self.undeclared_fill(parameters, context))
        except FersError as error:
            raise QgsProcessingException(str(error)) from error

        progress.info(self.tr("Enhanced {} valid pixels, {} model bands, in {:.1f} s.").format(
            summary.valid_pixels, summary.bands_used, summary.seconds))
        kinds = {self.OUTPUT: "FERS enhanced image", self.SPECTRAL_OUTPUT: "FERS spectral features",
                 self.SPATIAL_OUTPUT: "FERS spatial features"}
        layers = RunLayers(context, layer.name(), kinds.values(), model_label(model_path))
        for name, path in outputs.items():
            if path:
                layers.load(path, kinds[name], self.given_name(parameters, name))
        return {name: path for name, path in outputs.items() if path}
