"""Every algorithm called the way the batch dialog, the model designer and "Save to a temporary file" call it:
outputs left empty arrive as empty QgsProcessingOutputLayerDefinition, temporary outputs as 'TEMPORARY_OUTPUT'
with a project to load into, object layers may go to memory. A failed run leaves no file at all."""
import os

import processing
import pytest
from processing.gui.Postprocessing import handleAlgorithmResults
from qgis.core import (
    QgsApplication,
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingOutputLayerDefinition,
    QgsProcessingParameterRasterLayer,
    QgsProject,
    QgsVectorLayer,
)

from tests.helpers import written_anomaly_scene

pytestmark = pytest.mark.usefixtures("fers_plugin")

RX = "fers:detectanomaliesrx"
FERS = "fers:detectanomaliesfers"
ENHANCE = "fers:enhancefeatures"
# The outputs each algorithm has besides OUTPUT, all optional.
OPTIONAL_OUTPUTS = {RX: ("ANOMALY_MASK", "OBJECTS"), FERS: ("ANOMALY_MASK", "OBJECTS"),
                    ENHANCE: ("SPECTRAL_OUTPUT", "SPATIAL_OUTPUT")}


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return written_anomaly_scene(tmp_path_factory.mktemp("scene"))


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    pytest.importorskip("torch", reason="the test models are built and exported with torch")
    pytest.importorskip("onnxruntime", reason="FERS models run with onnxruntime")
    from tests.fers_models import ExportedModelSet

    return ExportedModelSet(tmp_path_factory.mktemp("models"), bands=6).spectral_path


@pytest.fixture
def project_context(qgis_new_project):
    """A context like the dialogs': outputs flagged "open after running" load into the current project."""
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    yield context
    QgsProject.instance().removeAllMapLayers()


def inputs(algorithm_id, scene, request):
    parameters = {"INPUT": scene.path}
    if algorithm_id != RX:
        parameters["MODEL_FILE"] = request.getfixturevalue("model_file")
    return parameters


def empty():
    """What the batch dialog and the model designer pass for an optional output the user left empty."""
    return QgsProcessingOutputLayerDefinition("")


def temporary():
    """What "Save to a temporary file" with "Open output file after running" passes."""
    return QgsProcessingOutputLayerDefinition(QgsProcessing.TEMPORARY_OUTPUT, QgsProject.instance())


@pytest.mark.parametrize("algorithm_id", [RX, FERS, ENHANCE])
def test_optional_outputs_left_empty_are_not_written(algorithm_id, scene, output_dir, request):
    parameters = inputs(algorithm_id, scene, request)
    parameters["OUTPUT"] = QgsProcessingOutputLayerDefinition(str(output_dir / "scores.tif"))
    parameters.update({name: empty() for name in OPTIONAL_OUTPUTS[algorithm_id]})
    result = processing.run(algorithm_id, parameters)
    assert result == {"OUTPUT": str(output_dir / "scores.tif")}
    assert os.listdir(output_dir) == ["scores.tif"]


@pytest.mark.parametrize("algorithm_id", [RX, FERS, ENHANCE])
def test_temporary_outputs_are_resolved_once_and_load(algorithm_id, scene, project_context, request):
    parameters = inputs(algorithm_id, scene, request)
    names = ("OUTPUT",) + OPTIONAL_OUTPUTS[algorithm_id]
    parameters.update({name: temporary() for name in names})
    result = processing.run(algorithm_id, parameters, context=project_context)
    to_load = project_context.layersToLoadOnCompletion()
    assert len(to_load) == len(names)
    assert all(os.path.isfile(path.split("|")[0]) for path in to_load), list(to_load)
    assert all(os.path.isfile(result[name]) for name in names if name != "OBJECTS")
    algorithm = QgsApplication.processingRegistry().algorithmById(algorithm_id)
    assert handleAlgorithmResults(algorithm, project_context, QgsProcessingFeedback())  # the dialog's loading step
    loaded = QgsProject.instance().mapLayers().values()
    assert len(loaded) == len(names) and all(layer.isValid() for layer in loaded)


@pytest.mark.parametrize("algorithm_id", [RX, FERS])
def test_objects_in_memory_with_a_temporary_mask(algorithm_id, scene, project_context, output_dir, request):
    parameters = inputs(algorithm_id, scene, request)
    parameters.update({"OUTPUT": str(output_dir / "scores.tif"), "ANOMALY_MASK": temporary(),
                       "OBJECTS": QgsProcessingOutputLayerDefinition("memory:"), "THRESHOLD": 0.25})
    result = processing.run(algorithm_id, parameters, context=project_context)
    objects = result["OBJECTS"]
    assert isinstance(objects, QgsVectorLayer) and objects.featureCount() >= 1
    assert os.path.isfile(result["ANOMALY_MASK"])
    assert all(os.path.isfile(path) for path in project_context.layersToLoadOnCompletion())


@pytest.mark.parametrize("algorithm_id", [RX, FERS])
def test_a_run_failing_after_scoring_leaves_no_file(algorithm_id, scene, output_dir, request):
    parameters = inputs(algorithm_id, scene, request)
    parameters.update({"OUTPUT": str(output_dir / "scores.tif"), "ANOMALY_MASK": str(output_dir / "mask.tif"),
                       # a folder that does not exist: the objects layer cannot be created
                       "OBJECTS": str(output_dir / "missing" / "objects.gpkg")})
    with pytest.raises(QgsProcessingException, match="objects.gpkg"):
        processing.run(algorithm_id, parameters)
    assert os.listdir(output_dir) == []


def test_the_model_designer_runs_it_and_its_output_names_are_kept(scene, project_context):
    model = QgsProcessingModelAlgorithm("detect", "tests")
    model.addModelParameter(QgsProcessingParameterRasterLayer("scene", "Scene"), QgsProcessingModelParameter("scene"))
    child = QgsProcessingModelChildAlgorithm(RX)
    child.generateChildId(model)
    child.addParameterSources("INPUT", [QgsProcessingModelChildParameterSource.fromModelParameter("scene")])
    outputs = {}
    for name, child_output in (("My scores", "OUTPUT"), ("My objects", "OBJECTS")):
        outputs[name] = QgsProcessingModelOutput(name)
        outputs[name].setChildId(child.childId())
        outputs[name].setChildOutputName(child_output)
    child.setModelOutputs(outputs)
    model.addChildAlgorithm(child)
    parameters = {"scene": scene.path}
    parameters.update({parameter.name(): temporary() for parameter in model.destinationParameterDefinitions()})
    # ANOMALY_MASK is not a model output: the model passes it as an empty definition.
    processing.run(model, parameters, context=project_context)
    names = sorted(details.name for details in project_context.layersToLoadOnCompletion().values())
    assert names == ["My objects", "My scores"]


class RecordingFeedback(QgsProcessingFeedback):
    """Keeps every message a run shows in the dialog's log."""

    def __init__(self):
        super().__init__()
        self.messages = []

    def pushInfo(self, info):  # noqa: N802 (QGIS API)
        self.messages.append(info)
        super().pushInfo(info)


@pytest.mark.parametrize("detector", range(6))
def test_fers_logs_and_layer_names_use_words_a_user_knows(detector, scene, model_file, project_context):
    feedback = RecordingFeedback()
    processing.run(FERS, {"INPUT": scene.path, "MODEL_FILE": model_file, "DETECTOR": detector,
                          "OUTPUT": temporary(), "ANOMALY_MASK": temporary()},
                   context=project_context, feedback=feedback)
    algorithm = QgsApplication.processingRegistry().algorithmById(FERS)
    texts = feedback.messages + [details.name for details in project_context.layersToLoadOnCompletion().values()]
    texts += algorithm.parameterDefinition("DETECTOR").options() + [algorithm.shortHelpString()]
    for text in texts:
        assert "spa_f" not in text and "spe_f" not in text and "x+" not in text.replace(" ", ""), text


@pytest.mark.parametrize("algorithm_id, words", [(RX, "RX global"), (FERS, "FERS-RX")])
def test_the_default_detector_its_layer_and_its_legend_say_the_same(algorithm_id, words, scene, project_context,
                                                                    request):
    parameters = inputs(algorithm_id, scene, request)
    parameters["OUTPUT"] = temporary()
    processing.run(algorithm_id, parameters, context=project_context)
    algorithm = QgsApplication.processingRegistry().algorithmById(algorithm_id)
    detector = algorithm.parameterDefinition("DETECTOR")
    assert detector.options()[detector.defaultValue()].startswith(words + " ")
    assert handleAlgorithmResults(algorithm, project_context, QgsProcessingFeedback())
    (layer,) = QgsProject.instance().mapLayers().values()
    assert layer.name().startswith(f"scene {words} anomaly scores")
    assert layer.bandName(1).startswith(f"Band 1: {words} anomaly score")  # what the legend and Identify show


def run_batch_row(algorithm_id, parameters):
    """One row of the BatchAlgorithmDialog (QGIS 3.22 to 3.44): no checkParameterValues, a fresh context on the
    project, outputs as definitions that load into it, then the dialog's loading step."""
    from processing.tools import dataobjects

    algorithm = QgsApplication.processingRegistry().createAlgorithmById(algorithm_id)
    feedback = QgsProcessingFeedback()
    context = dataobjects.createContext(feedback)
    parameters = algorithm.preprocessParameters(parameters)
    results, ok = algorithm.run(parameters, context, feedback)
    if ok:
        # by keyword: 3.22 has showResults before it, 3.40 dropped that argument
        assert handleAlgorithmResults(algorithm, context, feedback, parameters=parameters)
    return ok


def test_a_batch_of_three_scenes_with_only_the_scores_filled(tmp_path, output_dir, qgis_new_project):
    project = QgsProject.instance()
    for name in ("lake", "field", "city"):
        path = written_anomaly_scene(tmp_path).path
        os.replace(path, tmp_path / f"{name}.tif")
        assert run_batch_row(RX, {
            "INPUT": str(tmp_path / f"{name}.tif"), "DETECTOR": 0, "THRESHOLD_RULE": 0, "THRESHOLD": 0.1,
            "OUTPUT": QgsProcessingOutputLayerDefinition(str(output_dir / f"{name}_rx.tif"), project),
            "ANOMALY_MASK": QgsProcessingOutputLayerDefinition("", project),
            "OBJECTS": QgsProcessingOutputLayerDefinition("", project)})
    try:
        assert sorted(os.listdir(output_dir)) == ["city_rx.tif", "field_rx.tif", "lake_rx.tif"]
        assert sorted(layer.name() for layer in project.mapLayers().values()) == [
            "city RX global anomaly scores", "field RX global anomaly scores", "lake RX global anomaly scores"]
    finally:
        project.removeAllMapLayers()


def test_a_batch_row_failing_after_scoring_leaves_no_file(scene, output_dir, qgis_new_project):
    """The batch dialog skips checkParameterValues: a bad percentage is found only after scoring."""
    assert not run_batch_row(RX, {
        "INPUT": scene.path, "THRESHOLD": 150, "OUTPUT": QgsProcessingOutputLayerDefinition(str(output_dir / "s.tif")),
        "ANOMALY_MASK": QgsProcessingOutputLayerDefinition(str(output_dir / "m.tif")),
        "OBJECTS": QgsProcessingOutputLayerDefinition("")})
    assert os.listdir(output_dir) == []


def test_evaluation_with_temporary_files_loads_its_roc_figure(tmp_path, project_context):
    import numpy as np

    from tests.helpers import write_raster

    truth = np.zeros((30, 40), dtype=np.uint8)
    truth[5:8, 10:13] = 1
    scores = write_raster(tmp_path / "scores.tif", np.random.default_rng(0).normal(size=(30, 40)) + 3.0 * truth)
    result = processing.run("fers:evaluateanomalymap", {
        "SCORES": scores, "TRUTH": write_raster(tmp_path / "truth.tif", truth),
        "REPORT": QgsProcessing.TEMPORARY_OUTPUT, "CURVE": QgsProcessing.TEMPORARY_OUTPUT}, context=project_context)
    assert os.path.isfile(result["REPORT"]) and result["CURVE"].endswith(".png")
    assert list(project_context.layersToLoadOnCompletion()) == [result["CURVE"]]
    algorithm = QgsApplication.processingRegistry().algorithmById("fers:evaluateanomalymap")
    assert handleAlgorithmResults(algorithm, project_context, QgsProcessingFeedback())
    (figure,) = QgsProject.instance().mapLayers().values()
    assert figure.isValid() and figure.width() == figure.height() > 400
