"""The plugin as QGIS loads it: classFactory, initProcessing (all qgis_process calls), initGui and unload."""
import configparser
import re
import os
from unittest import mock

import processing
import pytest
from qgis.core import QgsApplication, QgsProcessingAlgorithm, QgsProject, QgsRasterLayer

from qgis.gui import QgsBrowserGuiModel

from fers_qgis import classFactory
from fers_qgis.compat import LAYER_RASTER
from fers_qgis.gui.layer_menu import RASTER_LAYER_ACTIONS, LayerMenu
from tests.helpers import PLUGIN_DIR, anomaly_scene, write_raster

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ALGORITHM = "fers:detectanomaliesrx"


@pytest.fixture
def stub_layer_actions(qgis_iface, monkeypatch):
    """Record the iface calls that add and remove context-menu actions."""
    add = mock.Mock(name="addCustomActionForLayerType")
    remove = mock.Mock(name="removeCustomActionForLayerType")
    monkeypatch.setattr(qgis_iface, "addCustomActionForLayerType", add, raising=False)
    monkeypatch.setattr(qgis_iface, "removeCustomActionForLayerType", remove, raising=False)
    return add, remove


@pytest.fixture
def scene_layer(tmp_path, qgis_new_project):
    """A small hyperspectral GeoTIFF loaded into the project as the layer the user right-clicks."""
    layer = QgsRasterLayer(write_raster(tmp_path / "scene.tif", anomaly_scene().cube_bhw), "scene")
    assert layer.isValid()
    QgsProject.instance().addMapLayer(layer)
    return layer


def test_metadata_is_visible_from_the_plugin_folder():
    metadata = configparser.ConfigParser()
    assert metadata.read(os.path.join(PLUGIN_DIR, "metadata.txt"), encoding="utf-8")
    general = metadata["general"]
    assert general["hasProcessingProvider"] == "yes"
    assert general["qgisMinimumVersion"] == "3.22"
    assert general["qgisMaximumVersion"] == "4.99"  # offered to QGIS 4 too
    assert "\n" not in general["about"]  # the plugin manager shows hard line breaks as they are
    assert os.path.isfile(os.path.join(PLUGIN_DIR, general["icon"]))


def test_plugin_registers_provider_and_layer_action_and_removes_them(qgis_processing, qgis_iface,
                                                                     stub_layer_actions):
    add_action, remove_action = stub_layer_actions
    registry = QgsApplication.processingRegistry()
    assert registry.providerById("fers") is None

    plugin = classFactory(qgis_iface)
    plugin.initProcessing()
    provider = registry.providerById("fers")
    assert provider is not None and provider.name() == "FERS"
    assert not provider.icon().isNull()
    assert provider.supportedOutputRasterLayerExtensions() == ["tif"]
    metadata = configparser.ConfigParser()
    metadata.read(os.path.join(PLUGIN_DIR, "metadata.txt"), encoding="utf-8")
    assert provider.versionInfo() == metadata["general"]["version"]
    algorithm = registry.algorithmById(ALGORITHM)
    assert algorithm is not None
    assert algorithm.displayName() == "Detect anomalies (RX)" and algorithm.group() == "Anomaly detection"
    assert algorithm.flags() & QgsProcessingAlgorithm.FlagSupportsBatch
    assert algorithm.flags() & QgsProcessingAlgorithm.FlagCanCancel
    assert type(algorithm.createInstance()) is type(algorithm)

    plugin.initGui()  # after initProcessing, as QGIS desktop does for processing plugins
    assert [p.id() for p in registry.providers()].count("fers") == 1
    assert add_action.call_count == len(RASTER_LAYER_ACTIONS)
    added = [call.args for call in add_action.call_args_list]
    # The toolbox's names, in a FERS submenu of the raster layer's context menu.
    toolbox = {algorithm.id(): algorithm.displayName() for algorithm in provider.algorithms()}
    assert [action.text() for action, *_ in added] == [
        "Detect anomalies (RX)...", "Detect anomalies (FERS)...", "Enhance background features (FERS)...",
        "Evaluate anomaly map..."]
    assert [action.text() for action, *_ in added] == [toolbox[entry.algorithm_id] + "..."
                                                       for entry in RASTER_LAYER_ACTIONS]
    assert all(tuple(rest) == ("FERS", LAYER_RASTER, True) for _, *rest in added)
    assert all(not action.icon().isNull() for action, *_ in added)

    plugin.unload()
    assert registry.providerById("fers") is None
    assert registry.algorithmById(ALGORITHM) is None
    assert [call.args[0] for call in remove_action.call_args_list] == [action for action, *_ in added]


def test_layer_action_opens_algorithm_dialog_with_clicked_layer(qgis_iface, stub_layer_actions, scene_layer,
                                                                monkeypatch):
    opened = []
    monkeypatch.setattr(processing, "execAlgorithmDialog",
                        lambda algorithm_id, parameters={}: opened.append((algorithm_id, parameters)))
    qgis_iface.setActiveLayer(scene_layer)  # QGIS makes the right-clicked layer the active one
    menu = LayerMenu(qgis_iface)
    menu.add()
    try:
        for action in menu.actions:
            action.trigger()
    finally:
        menu.remove()
    assert opened == [(ALGORITHM, {"INPUT": scene_layer}), ("fers:detectanomaliesfers", {"INPUT": scene_layer}),
                      ("fers:enhancefeatures", {"INPUT": scene_layer}),
                      ("fers:evaluateanomalymap", {"SCORES": scene_layer})]


def test_algorithm_dialog_accepts_clicked_layer(fers_plugin, scene_layer, qgis_iface, tmp_path, monkeypatch):
    """The parameters the layer action passes are what the real dialog needs to preselect the layer."""
    browser_model = QgsBrowserGuiModel()  # the stub iface has none; the dialog's layer widgets ask for it
    monkeypatch.setattr(qgis_iface, "browserModel", lambda: browser_model, raising=False)
    # Another raster that the dialog would preselect on its own (first by name).
    other = QgsRasterLayer(write_raster(tmp_path / "other.tif", anomaly_scene(seed=1).cube_bhw), "a first layer")
    QgsProject.instance().addMapLayer(other)
    dialog = processing.createAlgorithmDialog(ALGORITHM, {"INPUT": scene_layer})
    try:
        parameters = dialog.mainWidget().createProcessingParameters()
        assert parameters["INPUT"] == scene_layer.id()
        assert parameters["DETECTOR"] == 0
        assert (parameters["INNER_WINDOW"], parameters["OUTER_WINDOW"]) == (3, 15)
    finally:
        dialog.close()
        dialog.deleteLater()


def test_every_algorithm_has_help_naming_its_parameters_and_references(fers_plugin):
    from qgis.core import QgsApplication

    from fers_qgis.processing.algorithms.import_product import PRODUCT_REFERENCES

    provider = QgsApplication.processingRegistry().providerById("fers")
    assert len(provider.algorithms()) == 5
    for algorithm in provider.algorithms():
        text = algorithm.shortHelpString()
        if algorithm.name() == "importhyperspectralproduct":
            assert text.endswith(PRODUCT_REFERENCES)
        else:
            assert "Reed" in text and "2510.18781" in text, algorithm.id()
        for parameter in algorithm.parameterDefinitions():
            if parameter.isDestination() or parameter.name() in ("INPUT", "MODEL_FILE", "INNER_WINDOW",
                                                                 "OUTER_WINDOW", "SCORES", "TRUTH"):
                continue
            word = {"BANDS": "Bands", "DETECTOR": "Detector", "MASK": "Valid-pixel mask", "MODEL": "Model",
                    "USE_GPU": "GPU", "SCALE": "Scale", "THRESHOLD_RULE": "Threshold rule",
                    "THRESHOLD": "Threshold value", "UNDECLARED_FILL": "one value in every band",
                    "GEOMETRY": "Geometry"}[parameter.name()]
            assert word in text, (algorithm.id(), parameter.name())


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_algorithm_links_its_readme_section_and_has_its_own_icon(fers_plugin):
    with open(os.path.join(REPOSITORY, "README.md"), encoding="utf-8") as handle:
        anchors = {github_anchor(line.lstrip("#")) for line in handle if line.startswith("#")}
    metadata = configparser.ConfigParser()
    metadata.read(os.path.join(PLUGIN_DIR, "metadata.txt"), encoding="utf-8")
    provider = QgsApplication.processingRegistry().providerById("fers")
    icons = set()
    for algorithm in provider.algorithms():
        homepage, _, anchor = algorithm.helpUrl().partition("#")
        assert homepage == metadata["general"]["homepage"] and anchor in anchors, algorithm.id()
        assert not algorithm.icon().isNull() and os.path.isfile(algorithm.svgIconPath())
        icons.add(os.path.realpath(algorithm.svgIconPath()))
    assert len(icons) == len(provider.algorithms())


def test_parameter_names_say_what_they_hold(fers_plugin):
    registry = QgsApplication.processingRegistry()
    for algorithm_id in ("fers:detectanomaliesrx", "fers:detectanomaliesfers"):
        algorithm = registry.algorithmById(algorithm_id)
        describe = {parameter.name(): parameter.description() for parameter in algorithm.parameterDefinitions()}
        # The input mask and the output mask cannot be taken for each other.
        assert describe["MASK"].startswith("Valid-pixel mask (optional input")
        assert describe["ANOMALY_MASK"].startswith("Anomaly mask (result")
        # The threshold says what kind of number it is under each rule.
        assert "percent" in describe["THRESHOLD"] and "score" in describe["THRESHOLD"]
