"""What the FERS-model algorithms share: the model parameters (a shipped model set or a model file) and their checks."""
import re

from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
)

from ...compat import FILE_PARAMETER_FILE, PARAMETER_ADVANCED
from ...core.errors import FersError
from ...core.onnx_runtime import load_model_set, model_label, shipped_model_for, shipped_models


MODEL_HELP = (
    "<b>Model</b>: a shipped model set, or a model set's <i>.spectral.onnx</i> file trained with this project's "
    "training package (its <i>.spatial.onnx</i> companion must lie in the same folder). Its metadata says which "
    "bands it reads: the first B bands (the raster needs at least B) or B bands resampled over the spectrum (by "
    "wavelength when the raster has wavelength metadata, else by band position). The default, <i>Automatic</i>, "
    "takes the shipped model that covers the most of this raster's spectrum, then the one that keeps the most of "
    "its bands (a set with more model bands than the raster interpolates the extra ones): fers-b200-resample for "
    "most sensor products. The log names the set and the bands and wavelengths it read.\n"
    "<b>GPU</b> (advanced): run the models with CUDA when the installed onnxruntime has it; CPU otherwise.\n"
    "Needs onnxruntime in QGIS's Python: Plugins > FERS > Install FERS dependencies.\n")


# Shipped model sets are named fers-b<bands>-<band mode>; the name says what they read without loading them.
_SHIPPED_NAME = re.compile(r"-b(\d+)-(first|resample)$")


def shipped_model_choice(path: str) -> str:
    """The model choice as a user reads it: "FERS, first 50 bands (shipped: fers-b50-first)"."""
    name = model_label(path)
    match = _SHIPPED_NAME.search(name)
    if match is None:
        return f"FERS (shipped: {name})"
    bands, mode = match.groups()
    reads = f"first {bands} bands" if mode == "first" else f"{bands} bands resampled over the spectrum"
    return f"FERS, {reads} (shipped: {name})"


class FersModelParameters:
    """Mixin for QgsProcessingAlgorithm subclasses: adds MODEL (shipped sets, when there are any) and MODEL_FILE
    (a model set's spectral .onnx file, required when nothing is shipped), and resolves them to one file."""

    MODEL = "MODEL"
    MODEL_FILE = "MODEL_FILE"
    USE_GPU = "USE_GPU"
    RASTER = "INPUT"  # the raster whose band count the automatic choice looks at
    AUTOMATIC = "Automatic (the shipped model that reads the most of the raster's bands)"

    def add_model_parameters(self) -> None:
        """Declare MODEL (only when models are shipped) and MODEL_FILE; call from initAlgorithm."""
        self._shipped = shipped_models()
        if self._shipped:
            self.addParameter(QgsProcessingParameterEnum(
                self.MODEL, self.tr("Model"), options=[self.tr(self.AUTOMATIC)] + [
                    shipped_model_choice(path) for path in self._shipped], defaultValue=0))
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL_FILE, self.tr("Custom model file (*.spectral.onnx; overrides the model above)")
            if self._shipped else self.tr("Model file (*.spectral.onnx)"),
            behavior=FILE_PARAMETER_FILE, extension="onnx", optional=bool(self._shipped)))
        use_gpu = QgsProcessingParameterBoolean(
            self.USE_GPU, self.tr("Run the models on the GPU (CUDA) when this onnxruntime has it"), defaultValue=False)
        use_gpu.setFlags(use_gpu.flags() | PARAMETER_ADVANCED)
        self.addParameter(use_gpu)

    def use_gpu(self, parameters, context) -> bool:
        return self.parameterAsBoolean(parameters, self.USE_GPU, context)

    def model_path(self, parameters, context) -> str:
        """The spectral file to load: the custom file when given, else the chosen shipped model."""
        custom = self.parameterAsFile(parameters, self.MODEL_FILE, context)
        if custom:
            return custom
        shipped = getattr(self, "_shipped", None) or shipped_models()
        choice = self.parameterAsEnum(parameters, self.MODEL, context)
        if choice > 0:
            return shipped[choice - 1]
        raster = self.parameterAsRasterLayer(parameters, self.RASTER, context)
        if raster is None:
            raise QgsProcessingException(self.invalidRasterError(parameters, self.RASTER))
        try:
            return shipped_model_for(raster.bandCount(), shipped)
        except FersError as error:
            raise QgsProcessingException(str(error)) from error

    def model_problem(self, parameters, context) -> str:
        """Load the model set now, so a damaged model or a missing onnxruntime is reported before the run."""
        try:
            load_model_set(self.model_path(parameters, context))
        except (FersError, QgsProcessingException) as error:
            return str(error)
        return ""
