"""The optional anomaly mask and anomaly objects of the detection algorithms, and the styles of loaded layers."""
import numpy as np
import processing
import pytest
from qgis.core import (
    QgsPalettedRasterRenderer,
    QgsProcessingException,
    QgsRasterLayer,
    QgsSingleBandPseudoColorRenderer,
    QgsVectorLayer,
)

from fers_qgis.processing.styling import style_mask, style_scores
from tests.helpers import TEST_EPSG, read_raster, same_crs, write_raster, written_anomaly_scene

pytestmark = pytest.mark.usefixtures("fers_plugin")


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return written_anomaly_scene(tmp_path_factory.mktemp("scene"))


def test_rx_writes_a_top_percent_mask_and_its_objects(scene, tmp_path):
    pixels = scene.cube_bhw.shape[1] * scene.cube_bhw.shape[2]
    result = processing.run("fers:detectanomaliesrx", {
        "INPUT": scene.path, "OUTPUT": str(tmp_path / "rx.tif"), "THRESHOLD_RULE": 0, "THRESHOLD": 0.25,
        "ANOMALY_MASK": str(tmp_path / "mask.tif"), "OBJECTS": str(tmp_path / "objects.gpkg")})
    scores = read_raster(result["OUTPUT"]).cube_bhw[0]
    mask = read_raster(result["ANOMALY_MASK"])
    flagged = int(np.ceil(pixels * 0.25 / 100))
    assert mask.cube_bhw[0].sum() == flagged == 3
    np.testing.assert_array_equal(mask.cube_bhw[0] == 1, scores >= np.sort(scores.ravel())[-flagged])
    assert {tuple(position) for position in np.argwhere(mask.cube_bhw[0] == 1)} == set(scene.anomalies.values())
    assert same_crs(mask.projection_wkt, TEST_EPSG)

    layer = QgsVectorLayer(result["OBJECTS"], "objects", "ogr")
    assert layer.isValid() and layer.featureCount() == 3 and layer.crs().postgisSrid() == TEST_EPSG
    features = sorted(layer.getFeatures(), key=lambda feature: feature["id"])
    peaks = [feature["peak_score"] for feature in features]
    assert peaks == sorted(peaks, reverse=True) and peaks[0] == pytest.approx(scores.max(), rel=1e-6)
    assert all(feature["pixels"] == 1 and feature.geometry().area() == pytest.approx(900) for feature in features)


def test_a_fixed_score_threshold_and_a_bad_percentage(scene, tmp_path):
    result = processing.run("fers:detectanomaliesrx", {
        "INPUT": scene.path, "OUTPUT": str(tmp_path / "rx.tif"), "THRESHOLD_RULE": 1, "THRESHOLD": 1e9,
        "ANOMALY_MASK": str(tmp_path / "mask.tif")})
    assert read_raster(result["ANOMALY_MASK"]).cube_bhw.sum() == 0
    with pytest.raises(QgsProcessingException, match="between 0 and 100"):
        processing.run("fers:detectanomaliesrx", {
            "INPUT": scene.path, "OUTPUT": str(tmp_path / "bad.tif"), "THRESHOLD": 150,
            "ANOMALY_MASK": str(tmp_path / "bad_mask.tif")})
    assert not (tmp_path / "bad.tif").exists() and not (tmp_path / "bad_mask.tif").exists()


def test_no_mask_or_objects_unless_asked(scene, tmp_path):
    result = processing.run("fers:detectanomaliesrx", {"INPUT": scene.path, "OUTPUT": str(tmp_path / "rx.tif")})
    assert set(result) == {"OUTPUT"}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["rx.tif"]


def test_scores_get_a_percentile_stretched_ramp_and_masks_a_transparent_background(tmp_path):
    values = np.arange(10000, dtype=np.float32).reshape(100, 100)
    scores = QgsRasterLayer(write_raster(tmp_path / "scores.tif", values), "scores")
    style_scores(scores)
    renderer = scores.renderer()
    assert isinstance(renderer, QgsSingleBandPseudoColorRenderer)
    assert renderer.classificationMin() == pytest.approx(200, abs=20)
    assert renderer.classificationMax() == pytest.approx(9800, abs=20)

    mask = QgsRasterLayer(write_raster(tmp_path / "mask.tif", (values > 9000).astype(np.uint8)), "mask")
    style_mask(mask)
    classes = {item.value: item.color for item in mask.renderer().classes()}
    assert isinstance(mask.renderer(), QgsPalettedRasterRenderer)
    assert classes[0].alpha() == 0 and classes[1].alpha() == 255


def test_loaded_outputs_are_named_per_run_styled_and_stacked(scene, tmp_path, qgis_new_project, layer_tree_view):
    from qgis.core import QgsProject, QgsSingleSymbolRenderer, QgsWkbTypes

    project = QgsProject.instance()
    for run in ("first", "second"):
        # No layer selected: QGIS 3.44 inserts results above the selected layer, earlier versions on top.
        layer_tree_view.setCurrentLayer(None)
        processing.runAndLoadResults("fers:detectanomaliesrx", {
            "INPUT": scene.path, "OUTPUT": str(tmp_path / f"{run}_rx.tif"), "THRESHOLD": 0.25,
            "ANOMALY_MASK": str(tmp_path / f"{run}_mask.tif"), "OBJECTS": str(tmp_path / f"{run}_objects.gpkg")})
    try:
        names = [node.name() for node in project.layerTreeRoot().children()]
        # Newest run on top; in each run the objects and the mask lie above the scores they come from.
        assert names == ["scene RX global anomaly objects #2", "scene RX global anomaly mask #2",
                         "scene RX global anomaly scores #2", "scene RX global anomaly objects",
                         "scene RX global anomaly mask", "scene RX global anomaly scores"]
        scores, mask, objects = (project.mapLayersByName(f"scene RX global anomaly {kind}")[0]
                                 for kind in ("scores", "mask", "objects"))
        assert isinstance(scores.renderer(), QgsSingleBandPseudoColorRenderer)
        assert isinstance(mask.renderer(), QgsPalettedRasterRenderer)
        assert isinstance(objects.renderer(), QgsSingleSymbolRenderer)
        fill = objects.renderer().symbol().symbolLayer(0)
        assert fill.brushStyle() == 0 and fill.strokeColor().name() == "#e6194b"  # Qt's NoBrush: outlines only
        assert QgsWkbTypes.displayString(objects.wkbType()) == "MultiPolygon"
        assert all(feature.geometry().isMultipart() for feature in objects.getFeatures())
    finally:
        project.removeAllMapLayers()
