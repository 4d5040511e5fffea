"""Detect anomalies (RX) run the way the toolbox, batch runs and models run it: through Processing."""
import os
import zipfile

import numpy as np
import processing
import pytest
from osgeo import gdal
from qgis.core import (
    QgsApplication,
    QgsProcessingAlgRunnerTask,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingParameterRasterLayer,
    QgsProject,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QEventLoop, QTimer

from tests.helpers import (TEST_EPSG, TEST_GEOTRANSFORM, anomaly_scene, read_raster, same_crs, set_wavelengths,
                           write_raster)

ALGORITHM = "fers:detectanomaliesrx"
INPUT_NODATA = -1000.0
OUTPUT_NODATA = -9999.0

pytestmark = pytest.mark.usefixtures("fers_plugin")


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """The 40 x 30 x 8 anomaly scene as a Float32 GeoTIFF with a 2 x 3 nodata corner."""
    scene = anomaly_scene()
    cube_bhw = scene.cube_bhw.copy()
    cube_bhw[:, :2, :3] = INPUT_NODATA
    scene.nodata_hw = np.zeros(cube_bhw.shape[1:], dtype=bool)
    scene.nodata_hw[:2, :3] = True
    scene.path = write_raster(tmp_path_factory.mktemp("scene") / "scene.tif", cube_bhw, nodata=INPUT_NODATA)
    return scene


def highest(scores_hw, count):
    """The (row, column) positions of the `count` highest scores, nodata excluded."""
    ranked = np.where(scores_hw == OUTPUT_NODATA, -np.inf, scores_hw).ravel().argsort()[::-1][:count]
    return {tuple(int(i) for i in np.unravel_index(index, scores_hw.shape)) for index in ranked}


def run_scores(parameters):
    """Run the algorithm with processing.run; return the single band of scores it wrote and that band's name."""
    result = processing.run(ALGORITHM, parameters)
    assert result["OUTPUT"] == parameters["OUTPUT"]
    written = read_raster(result["OUTPUT"])
    assert written.cube_bhw.shape[0] == 1
    return written.cube_bhw[0], written.band_names[0]


def test_global_rx_ranks_anomalies_first_and_keeps_the_grid(scene, output_dir):
    output = str(output_dir / "rx.tif")
    result = processing.run(ALGORITHM, {"INPUT": scene.path, "OUTPUT": output})

    assert result["OUTPUT"] == output
    written = read_raster(output)
    assert written.cube_bhw.shape == (1, 30, 40)
    assert written.data_types == ("Float32",)
    assert written.geotransform == TEST_GEOTRANSFORM
    assert same_crs(written.projection_wkt, TEST_EPSG)
    assert written.nodata == (OUTPUT_NODATA,)
    assert "local" not in written.band_names[0].lower()
    scores = written.cube_bhw[0]
    assert np.all(scores[scene.nodata_hw] == OUTPUT_NODATA)
    assert np.all(scores[~scene.nodata_hw] >= 0)
    assert highest(scores, 3) == set(scene.anomalies.values())
    # Each anomaly sits 12 background standard deviations out: its score is near 12^2, the background's is
    # chi-square with 8 degrees of freedom.
    anomaly_scores = [scores[position] for position in scene.anomalies.values()]
    background = np.ones(scores.shape, dtype=bool)
    background[scene.nodata_hw] = False
    for position in scene.anomalies.values():
        background[position] = False
    assert min(anomaly_scores) > 60 and np.median(scores[background]) < 12


def test_local_rx_ranks_anomalies_first(scene, output_dir):
    scores, band_name = run_scores({"INPUT": scene.path, "DETECTOR": 1, "INNER_WINDOW": 5, "OUTER_WINDOW": 13,
                                    "OUTPUT": str(output_dir / "local.tif")})
    assert "local" in band_name.lower() and "5/13" in band_name  # the core names the detector and windows
    assert scores.shape == (30, 40)
    assert np.all(scores[scene.nodata_hw] == OUTPUT_NODATA)
    assert highest(scores, 3) == set(scene.anomalies.values())


def test_band_subset_sees_only_anomalies_in_those_bands(scene, output_dir):
    scores, _ = run_scores({"INPUT": scene.path, "BANDS": [1, 2, 3, 4], "OUTPUT": str(output_dir / "bands.tif")})
    anomalies = scene.anomalies
    assert highest(scores, 2) == {anomalies["all_bands"], anomalies["bands_1_4"]}
    # The anomaly confined to bands 5-8 is an ordinary pixel in bands 1-4.
    assert scores[anomalies["bands_5_8"]] < 0.2 * min(scores[anomalies["all_bands"]], scores[anomalies["bands_1_4"]])


@pytest.mark.parametrize("bands", ["1-4", "1-2, 3-4", "1;2;3;4", "400-550 nm", "0.4-0.55 um"])
def test_typed_band_ranges_and_wavelength_ranges_select_bands(bands, scene, tmp_path, output_dir):
    source = str(tmp_path / "scene.tif")
    set_wavelengths(write_raster(source, read_raster(scene.path).cube_bhw, nodata=INPUT_NODATA),
                    [400.0 + 50 * band for band in range(8)])
    scores, _ = run_scores({"INPUT": source, "BANDS": bands, "OUTPUT": str(output_dir / "bands.tif")})
    expected, _ = run_scores({"INPUT": scene.path, "BANDS": [1, 2, 3, 4], "OUTPUT": str(output_dir / "list.tif")})
    np.testing.assert_array_equal(scores, expected)


@pytest.mark.parametrize("bands, message", [
    ("1-50", "Band numbers 9-50 do not exist: the raster has bands 1 to 8"),
    ("400-1000 nm", "no wavelengths.*band numbers such as 1-50"),
])
def test_impossible_band_selections_say_why_and_write_nothing(bands, message, scene, output_dir):
    with pytest.raises(QgsProcessingException, match=message):
        processing.run(ALGORITHM, {"INPUT": scene.path, "BANDS": bands, "OUTPUT": str(output_dir / "rx.tif")})
    assert os.listdir(output_dir) == []


def test_mask_limits_the_pixels_used_and_scored(scene, tmp_path, output_dir):
    mask_hw = np.ones((30, 40), dtype=np.uint8)
    mask_hw[:12, :13] = 0  # covers the anomaly at (8, 9)
    mask_path = write_raster(tmp_path / "mask.tif", mask_hw)
    scores, _ = run_scores({"INPUT": scene.path, "MASK": mask_path, "OUTPUT": str(output_dir / "masked.tif")})
    unscored = (mask_hw == 0) | scene.nodata_hw
    assert np.all(scores[unscored] == OUTPUT_NODATA)
    assert np.all(scores[~unscored] != OUTPUT_NODATA)
    assert highest(scores, 2) == {scene.anomalies["bands_1_4"], scene.anomalies["bands_5_8"]}


def test_runs_as_a_background_task(scene, output_dir):
    """The toolbox dialog runs algorithms in a QgsTask on a worker thread; nothing may need the main thread."""
    algorithm = QgsApplication.processingRegistry().createAlgorithmById(ALGORITHM)
    context = QgsProcessingContext()
    feedback = QgsProcessingFeedback()
    output = str(output_dir / "task.tif")
    task = QgsProcessingAlgRunnerTask(algorithm, {"INPUT": scene.path, "OUTPUT": output}, context, feedback)
    outcome = {}
    task.executed.connect(lambda ok, results: outcome.update(ok=ok, results=results))
    loop = QEventLoop()
    task.executed.connect(loop.quit)
    QTimer.singleShot(30000, loop.quit)
    QgsApplication.taskManager().addTask(task)
    loop.exec_()
    assert outcome.get("ok") is True, outcome
    assert outcome["results"]["OUTPUT"] == output
    assert highest(read_raster(output).cube_bhw[0], 3) == set(scene.anomalies.values())


def test_runs_inside_a_model(scene, output_dir):
    """Models evaluate parameters from model inputs and static values; the algorithm must run there too."""
    model = QgsProcessingModelAlgorithm("rx model", "tests")
    model.addModelParameter(QgsProcessingParameterRasterLayer("scene", "Scene"), QgsProcessingModelParameter("scene"))
    child = QgsProcessingModelChildAlgorithm(ALGORITHM)
    child.setChildId("rx")
    child.addParameterSources("INPUT", [QgsProcessingModelChildParameterSource.fromModelParameter("scene")])
    child.addParameterSources("DETECTOR", [QgsProcessingModelChildParameterSource.fromStaticValue(1)])
    output = QgsProcessingModelOutput("scores", "Scores")
    output.setChildOutputName("OUTPUT")
    child.setModelOutputs({"scores": output})
    model.addChildAlgorithm(child)

    path = str(output_dir / "model.tif")
    (destination,) = model.destinationParameterDefinitions()  # "rx:scores" in 3.22, "scores" in 3.40
    result = processing.run(model, {"scene": scene.path, destination.name(): path})
    assert result[destination.name()] == path
    assert highest(read_raster(path).cube_bhw[0], 3) == set(scene.anomalies.values())


def test_loaded_result_is_named_after_the_input(scene, qgis_new_project):
    processing.runAndLoadResults(ALGORITHM, {"INPUT": scene.path, "OUTPUT": "TEMPORARY_OUTPUT"})
    assert [layer.name() for layer in QgsProject.instance().mapLayers().values()] == ["scene RX global anomaly scores"]


def write_bad_input(case, path):
    """Write an input the core must refuse; returns the extra parameters the case needs."""
    rng = np.random.default_rng(5)
    if case == "single band":
        write_raster(path, rng.normal(size=(1, 10, 10)).astype(np.float32))
    elif case == "fewer valid pixels than bands":
        cube_bhw = np.full((8, 10, 10), INPUT_NODATA, dtype=np.float32)
        cube_bhw[:, 0, :5] = rng.normal(size=(8, 5))
        write_raster(path, cube_bhw, nodata=INPUT_NODATA)
    elif case == "all nodata":
        write_raster(path, np.full((4, 10, 10), INPUT_NODATA, dtype=np.float32), nodata=INPUT_NODATA)
    elif case == "unreadable file":
        path.write_bytes(b"II*\x00 this is not a TIFF " * 40)
    else:
        write_raster(path, rng.normal(size=(4, 20, 20)).astype(np.float32))
        return {"even inner window": {"DETECTOR": 1, "INNER_WINDOW": 4},
                "even outer window": {"DETECTOR": 1, "OUTER_WINDOW": 14},
                "outer not larger": {"DETECTOR": 1, "INNER_WINDOW": 7, "OUTER_WINDOW": 7}}[case]
    return {}


@pytest.mark.parametrize("case, message", [
    ("single band", "at least 2 bands"),
    ("fewer valid pixels than bands", "5 valid pixels and 8 bands"),
    ("all nodata", "no valid pixels"),
    ("unreadable file", "cannot be read as a raster"),
    ("even inner window", "must be odd"),
    ("even outer window", "must be odd"),
    ("outer not larger", "must be larger than the inner window"),
])
def test_bad_input_raises_a_clear_error_and_writes_nothing(case, message, tmp_path, output_dir):
    source = tmp_path / "input.tif"
    extra = write_bad_input(case, source)
    with pytest.raises(QgsProcessingException, match=message) as error:
        processing.run(ALGORITHM, {"INPUT": str(source), "OUTPUT": str(output_dir / "rx.tif"), **extra})
    assert "Traceback" not in str(error.value)  # the user sees the sentence, not a Python stack
    assert os.listdir(output_dir) == []


@pytest.mark.parametrize("detector, inner, outer, problem", [
    (1, 3, 15, None),
    (1, 4, 15, "must be odd"),
    (1, 3, 16, "must be odd"),
    (1, 9, 9, "must be larger"),
    (1, 11, 9, "must be larger"),
    (0, 4, 4, None),  # the global detector has no windows
])
def test_window_sizes_are_checked_before_the_run(scene, output_dir, detector, inner, outer, problem):
    """The dialog calls checkParameterValues before starting the task: window errors show up there."""
    algorithm = QgsApplication.processingRegistry().createAlgorithmById(ALGORITHM)
    ok, message = algorithm.checkParameterValues(
        {"INPUT": scene.path, "DETECTOR": detector, "INNER_WINDOW": inner, "OUTER_WINDOW": outer,
         "OUTPUT": str(output_dir / "rx.tif")}, QgsProcessingContext())
    assert ok == (problem is None)
    if problem:
        assert problem in message and str(inner) in message and str(outer) in message


def test_a_layer_inside_a_zip_is_scored_and_a_database_raster_is_refused_with_advice(scene, tmp_path, output_dir,
                                                                                      qgis_new_project):
    """GDAL reads a raster inside a ZIP in place (issue 21); a raster table of a GeoPackage is no raster file."""
    archive = tmp_path / "scene.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(scene.path, "scene.tif")
    layer = QgsRasterLayer(f"/vsizip/{archive}/scene.tif", "zipped scene")
    assert layer.isValid()
    QgsProject.instance().addMapLayer(layer)
    result = processing.run(ALGORITHM, {"INPUT": layer, "OUTPUT": str(output_dir / "rx.tif")})
    assert read_raster(result["OUTPUT"]).cube_bhw.shape[1:] == (layer.height(), layer.width())
    os.remove(result["OUTPUT"])
    table = gdal.GetDriverByName("MEM").Create("", 10, 10, 1, gdal.GDT_Byte)
    table.SetGeoTransform((0, 1, 0, 10, 0, -1))
    geopackage = str(tmp_path / "rasters.gpkg")
    for name, options in (("a", []), ("b", ["APPEND_SUBDATASET=YES"])):
        gdal.Translate(geopackage, table, format="GPKG", creationOptions=[f"RASTER_TABLE={name}", *options])
    database_layer = QgsRasterLayer(f"GPKG:{geopackage}:b", "table b")
    assert database_layer.isValid()
    with pytest.raises(QgsProcessingException, match="not a raster file .*GeoTIFF"):
        processing.run(ALGORITHM, {"INPUT": database_layer, "OUTPUT": str(output_dir / "rx.tif")})
    assert os.listdir(output_dir) == []


def test_output_must_be_a_geotiff(scene, output_dir):
    with pytest.raises(QgsProcessingException, match=r"\.tif"):
        processing.run(ALGORITHM, {"INPUT": scene.path, "OUTPUT": str(output_dir / "rx.img")})
    assert os.listdir(output_dir) == []


class CancelAtFirstProgress(QgsProcessingFeedback):
    """A user who presses Cancel as soon as the progress bar first moves."""

    def __init__(self):
        super().__init__()
        self.reports = []

    def setProgress(self, progress):  # noqa: N802 (QGIS API)
        super().setProgress(progress)
        self.reports.append(progress)
        self.cancel()


def test_cancel_stops_the_run_and_leaves_no_output(scene, output_dir):
    feedback = CancelAtFirstProgress()
    with pytest.raises(QgsProcessingException, match="[Cc]ancel"):
        processing.run(ALGORITHM, {"INPUT": scene.path, "OUTPUT": str(output_dir / "rx.tif")}, feedback=feedback)
    assert len(feedback.reports) >= 1 and max(feedback.reports) < 100
    assert os.listdir(output_dir) == []
