"""Run inside QGIS (``qgis --code``) by docs/make_screenshots.sh: the toolbox with the FERS provider, the FERS
dialog for a scene, and a map with the anomaly mask over the scene, saved as PNGs into $SHOTS_OUT."""
import os

from qgis.core import QgsApplication, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QDockWidget, QLineEdit
from qgis.utils import iface

OUT = os.environ["SHOTS_OUT"]
SCENE = os.environ["SHOTS_SCENE"]
state = {}


def load_scene_and_detect():
    import processing

    scene = QgsRasterLayer(SCENE, os.path.splitext(os.path.basename(SCENE))[0])
    QgsProject.instance().addMapLayer(scene)
    state["scene"] = scene
    processing.runAndLoadResults("fers:detectanomaliesfers", {
        "INPUT": SCENE, "OUTPUT": os.path.join(OUT, "scores.tif"), "ANOMALY_MASK": os.path.join(OUT, "mask.tif"),
        "THRESHOLD": 0.2})
    root = QgsProject.instance().layerTreeRoot()
    for layer in QgsProject.instance().mapLayersByName(f"{scene.name()} FERS anomalies"):
        root.findLayer(layer.id()).setItemVisibilityChecked(False)  # the mask over the scene
    iface.mapCanvas().setExtent(scene.extent())
    iface.mapCanvas().refresh()
    QTimer.singleShot(4000, grab_map_and_toolbox)


def grab_map_and_toolbox():
    iface.mainWindow().grab().save(os.path.join(OUT, "map.png"))
    toolbox = iface.mainWindow().findChild(QDockWidget, "ProcessingToolbox")
    toolbox.show()
    toolbox.raise_()
    search = toolbox.findChild(QLineEdit)
    if search is not None:
        search.setText("FERS")
    QTimer.singleShot(2000, grab_toolbox_then_open_dialog)


def grab_toolbox_then_open_dialog():
    iface.mainWindow().grab().save(os.path.join(OUT, "toolbox.png"))
    from processing.gui.AlgorithmDialog import AlgorithmDialog

    algorithm = QgsApplication.processingRegistry().createAlgorithmById("fers:detectanomaliesfers")
    dialog = AlgorithmDialog(algorithm, False, iface.mainWindow())
    dialog.setParameters({"INPUT": state["scene"]})
    dialog.resize(900, 640)
    dialog.show()
    state["dialog"] = dialog
    QTimer.singleShot(2000, grab_dialog_and_quit)


def grab_dialog_and_quit():
    state["dialog"].grab().save(os.path.join(OUT, "dialog.png"))
    QgsApplication.exit(0)


QTimer.singleShot(3000, load_scene_and_detect)
