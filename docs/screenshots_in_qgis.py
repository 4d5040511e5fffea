"""Run inside QGIS (``qgis --code``) by docs/make_screenshots.sh: the acceptance walk through the desktop, as a user
would do it, saving a PNG of each stage into $SHOTS_OUT (and a log of the walk into $SHOTS_OUT/walk.log).

QGIS starts without onnxruntime. The walk:
 1. Detect anomalies (FERS) is run and says onnxruntime is missing (fers_missing.png);
 2. Plugins > FERS > Install FERS dependencies runs pip (installer.png);
 3. the same FERS dialog is run again, in the same QGIS session, and succeeds (dialog.png, map.png);
 4. the installer, opened again, says the pinned version is there and downloads nothing (installer_again.png);
 5. the Processing toolbox searched for FERS (toolbox.png);
 6. a right-click on the raster layer, mouse on the FERS submenu, then its first entry opened (context_menu.png);
 7. Detect anomalies (FERS) as a batch process over three scenes, only the score outputs filled (batch_rows.png),
    run: every row succeeds and writes only its scores (batch.png);
 8. the model designer with a model that runs FERS, which is then run (designer.png).
A step that fails writes its traceback to the log and QGIS exits with status 1.
"""
import os
import subprocess  # nosec B404 # xdotool: the mouse of the acceptance walk
import threading
import time
import traceback

from qgis.core import QgsApplication, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import QPoint, QTimer
from qgis.PyQt.QtWidgets import QApplication, QDialogButtonBox, QDockWidget, QLineEdit, QMenu, QTextEdit
from qgis.utils import iface, plugins

OUT = os.environ["SHOTS_OUT"]
SCENES = os.environ["SHOTS_SCENES"].split(os.pathsep)  # the first is the walk's scene; three go through the batch
FERS = "fers:detectanomaliesfers"
state = {}


def log(message):
    with open(os.path.join(OUT, "walk.log"), "a") as handle:
        handle.write(f"{time.strftime('%H:%M:%S')} {message}\n")


def end_walk(status):
    """Leave QGIS with ``status``; QGIS 3.22 sometimes neither leaves its event loop nor tears down cleanly after
    dialogs like these, so the process ends for sure a little later."""
    QgsApplication.exit(status)
    threading.Timer(20, os._exit, (status,)).start()


def then(delay_ms, step):
    """Run ``step`` after ``delay_ms`` from the event loop (also from inside a modal dialog's loop)."""
    def guarded():
        try:
            log(step.__name__)
            step()
        except Exception:  # the walk stops at the first failing step, with its traceback in the log
            log(traceback.format_exc())
            end_walk(1)
    QTimer.singleShot(delay_ms, guarded)


def when(condition, step, what, timeout_s=300):
    """Run ``step`` once ``condition()`` holds (polled twice a second), or stop the walk after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s

    def poll():
        if condition():
            then(1000, step)  # a moment for the widgets to repaint
        elif time.monotonic() > deadline:
            log(f"timed out waiting for {what}")
            end_walk(1)
        else:
            QTimer.singleShot(500, poll)
    poll()


def shoot(name, widget=None):
    """Save the screen, or the part of it that ``widget`` covers (menus and message boxes included)."""
    screen = QApplication.primaryScreen()
    if widget is None:
        picture = screen.grabWindow(0)
    else:
        corner = widget.mapToGlobal(QPoint(0, 0))
        picture = screen.grabWindow(0, corner.x(), corner.y(), widget.width(), widget.height())
    picture.save(os.path.join(OUT, name + ".png"))


def click(widget, point, button=1, just_move=False):
    """Move the real (XTEST) mouse to ``point`` of ``widget`` and click there: what a user's hand does."""
    at = widget.mapToGlobal(point)
    # Approach the point from the left, as a hand does: menus react to motion, not to a pointer that just appears.
    command = ["xdotool", "mousemove", str(at.x() - 12), str(at.y()), "sleep", "0.2",
               "mousemove", str(at.x()), str(at.y()), "sleep", "0.3"] + ([] if just_move else ["click", str(button)])
    subprocess.run(command, check=True)  # nosec B603 B607 # fixed command, no shell


def run_button(dialog):
    return dialog.buttonBox().button(QDialogButtonBox.StandardButton.Ok)


def fers_dialog(parameters):
    from processing.gui.AlgorithmDialog import AlgorithmDialog

    algorithm = QgsApplication.processingRegistry().createAlgorithmById(FERS)
    dialog = AlgorithmDialog(algorithm, False, iface.mainWindow())
    dialog.setParameters(parameters)
    dialog.resize(900, 680)
    dialog.move(250, 60)
    dialog.show()
    return dialog


def start():
    iface.mainWindow().setGeometry(0, 0, 1400, 900)
    scene = QgsRasterLayer(SCENES[0], os.path.splitext(os.path.basename(SCENES[0]))[0])
    QgsProject.instance().addMapLayer(scene)
    iface.setActiveLayer(scene)
    iface.mapCanvas().setExtent(scene.extent())
    state["scene"] = scene
    state["dialog"] = fers_dialog({"INPUT": scene})
    then(2000, run_fers_without_onnxruntime)


def run_fers_without_onnxruntime():
    then(2000, shoot_missing_onnxruntime)
    run_button(state["dialog"]).click()  # the warning box is modal: the next step runs inside its loop


def shoot_missing_onnxruntime():
    box = QApplication.activeModalWidget()
    assert box is not None and "onnxruntime" in box.text(), "no message about onnxruntime"
    shoot("fers_missing", state["dialog"])
    box.accept()
    state["dialog"].close()
    then(1000, open_installer)


def visible_window(class_name):
    """The shown top-level window of that class (without a window manager none is 'active')."""
    return next((widget for widget in QApplication.topLevelWidgets()
                 if type(widget).__name__ == class_name and widget.isVisible()), None)


def installer_dialog():
    return visible_window("DependenciesDialog")


def open_installer():
    when(lambda: installer_dialog() is not None and not installer_dialog().running
         and "Installing" not in installer_dialog().status.text(), shoot_installer, "pip", timeout_s=400)
    plugins["fers_qgis"].install_action.trigger()  # what Plugins > FERS > Install FERS dependencies does


def shoot_installer():
    dialog = installer_dialog()
    log(dialog.status.text())
    assert "without restarting QGIS" in dialog.status.text(), dialog.log.toPlainText()[-2000:]
    shoot("installer", dialog)
    dialog.reject()
    then(1000, run_fers_after_install)


def run_fers_after_install():
    state["dialog"] = fers_dialog({"INPUT": state["scene"], "OUTPUT": os.path.join(OUT, "scores.tif"),
                                   "ANOMALY_MASK": os.path.join(OUT, "mask.tif")})
    run_button(state["dialog"]).click()
    when(lambda: os.path.exists(os.path.join(OUT, "mask.tif")) and len(QgsProject.instance().mapLayers()) >= 3
         and QgsApplication.taskManager().countActiveTasks() == 0, shoot_fers_run, "the FERS run")


def shoot_fers_run():
    shoot("dialog", state["dialog"])
    state["dialog"].close()
    root = QgsProject.instance().layerTreeRoot()
    for layer in QgsProject.instance().mapLayers().values():
        if layer.source() == os.path.join(OUT, "scores.tif"):
            root.findLayer(layer.id()).setItemVisibilityChecked(False)  # the mask over the scene
    iface.mapCanvas().refresh()
    then(3000, shoot_map)


def shoot_map():
    shoot("map")
    when(lambda: installer_dialog() is not None, shoot_installer_again, "the installer")
    plugins["fers_qgis"].install_action.trigger()


def shoot_installer_again():
    dialog = installer_dialog()
    assert "already installed" in dialog.status.text() and not dialog.running, dialog.status.text()
    shoot("installer_again", dialog)
    dialog.reject()
    then(1000, search_toolbox)


def search_toolbox():
    toolbox = iface.mainWindow().findChild(QDockWidget, "ProcessingToolbox")
    toolbox.show()
    toolbox.raise_()
    toolbox.findChild(QLineEdit).setText("FERS")
    then(2000, shoot_toolbox)


def shoot_toolbox():
    shoot("toolbox")
    view = iface.layerTreeView()
    node = QgsProject.instance().layerTreeRoot().findLayer(state["scene"].id())
    index = view.node2index(node)
    view.setCurrentIndex(index)
    then(1500, open_fers_submenu)
    click(view.viewport(), view.visualRect(index).center(), button=3)  # the layer's context menu (modal)


def open_fers_submenu():
    menu = QApplication.activePopupWidget()
    assert isinstance(menu, QMenu), "no context menu"
    fers = next((action for action in menu.actions() if action.menu() is not None and "FERS" in action.text()), None)
    if fers is None:  # entries directly in the layer menu
        state["entries"] = menu
        then(500, shoot_context_menu)
        return
    state["entries"] = fers.menu()
    click(menu, menu.actionGeometry(fers).center(), just_move=True)
    menu.setActiveAction(fers)  # what QMenu does on hover, in case Xvfb's synthetic motion did not count as one
    then(1500, shoot_context_menu)


def shoot_context_menu():
    shoot("context_menu")
    entries = state["entries"]
    first = next(action for action in entries.actions() if action.text().startswith("Detect anomalies"))
    log("right-click entries: " + ", ".join(action.text() for action in entries.actions() if action.text()))
    then(3000, close_dialog_from_menu)
    click(entries, entries.actionGeometry(first).center())


def close_dialog_from_menu():
    dialog = visible_window("AlgorithmDialog")
    assert dialog is not None, "the right-click entry opened no algorithm dialog"
    log(f"the entry opened {dialog.windowTitle()!r}")
    dialog.reject()
    then(1000, fill_batch)


def fill_batch():
    from processing.gui.BatchAlgorithmDialog import BatchAlgorithmDialog
    from processing.tools import dataobjects

    algorithm = QgsApplication.processingRegistry().createAlgorithmById(FERS)
    dialog = BatchAlgorithmDialog(algorithm, iface.mainWindow())
    panel = dialog.mainWidget()
    scenes = SCENES[:3]
    panel.addRow(len(scenes) - 1)
    context = dataobjects.createContext()
    output_column = panel.parameter_to_column["OUTPUT"]
    os.makedirs(os.path.join(OUT, "batch"), exist_ok=True)
    for row, path in enumerate(scenes):
        panel.wrappers[row][panel.parameter_to_column["INPUT"]].setParameterValue(path, context)
        name = os.path.splitext(os.path.basename(path))[0]
        panel.tblParameters.cellWidget(row + 1, output_column).setValue(os.path.join(OUT, "batch", name + ".tif"))
    dialog.show()
    dialog.setGeometry(20, 40, 1360, 800)
    state["batch"] = dialog
    then(1500, run_batch)


def run_batch():
    panel = state["batch"].mainWidget()
    table = panel.tblParameters
    # The output columns, from the scores on: the only one filled.
    table.horizontalScrollBar().setValue(table.horizontalHeader().sectionPosition(panel.parameter_to_column["OUTPUT"]))
    then(500, shoot_batch_rows_and_run)


def shoot_batch_rows_and_run():
    shoot("batch_rows", state["batch"])
    run_button(state["batch"]).click()  # runs the rows one after the other before returning
    then(2000, shoot_batch)


def shoot_batch():
    shoot("batch", state["batch"])
    report = state["batch"].findChild(QTextEdit, "txtLog").toPlainText()
    written = sorted(os.listdir(os.path.join(OUT, "batch")))
    log(f"batch wrote {written}; its log ends: {report.strip().splitlines()[-1]!r}")
    assert "failed" not in report, report
    assert written == sorted(os.path.basename(path)[:-4] + ".tif" for path in SCENES[:3]), written
    state["batch"].close()
    then(1000, open_designer)


def fers_model():
    """A model as a user builds it in the designer: a raster input, FERS on it, its scores and mask as outputs."""
    from qgis.core import (QgsProcessingModelAlgorithm, QgsProcessingModelChildAlgorithm,
                           QgsProcessingModelChildParameterSource, QgsProcessingModelOutput,
                           QgsProcessingModelParameter, QgsProcessingParameterRasterLayer)
    from qgis.PyQt.QtCore import QPointF

    model = QgsProcessingModelAlgorithm("Find anomalies in a scene", "FERS")
    scene = QgsProcessingModelParameter("scene")
    scene.setPosition(QPointF(140, 80))
    model.addModelParameter(QgsProcessingParameterRasterLayer("scene", "Hyperspectral scene"), scene)
    child = QgsProcessingModelChildAlgorithm(FERS)
    child.setChildId("fers")
    child.setDescription("Detect anomalies (FERS)")
    child.setPosition(QPointF(340, 220))
    child.addParameterSources("INPUT", [QgsProcessingModelChildParameterSource.fromModelParameter("scene")])
    for definition in QgsApplication.processingRegistry().algorithmById(FERS).parameterDefinitions():
        if not definition.isDestination() and definition.name() != "INPUT":  # as the designer's dialog fills them
            child.addParameterSources(definition.name(), [
                QgsProcessingModelChildParameterSource.fromStaticValue(definition.defaultValue())])
    outputs = {}
    for name, description, y in (("OUTPUT", "Scene anomaly scores", 340), ("ANOMALY_MASK", "Scene anomaly mask", 420)):
        output = QgsProcessingModelOutput(description, description)
        output.setChildOutputName(name)
        output.setChildId("fers")
        output.setPosition(QPointF(560, y))
        outputs[description] = output
    child.setModelOutputs(outputs)
    model.addChildAlgorithm(child)
    return model


def open_designer():
    from processing.modeler.ModelerDialog import ModelerDialog

    designer = ModelerDialog.create()
    designer.setModel(fers_model())
    designer.setGeometry(20, 40, 1360, 820)
    search = designer.findChild(QLineEdit, "mAlgorithmSearchEdit")
    if search is not None:
        search.setText("FERS")
    designer.show()
    state["designer"] = designer
    then(3000, run_model_and_shoot_designer)


def run_model_and_shoot_designer():
    import processing

    shoot("designer", state["designer"])
    model = state["designer"].model()
    results = processing.run(model, {"scene": SCENES[1], "fers:Scene anomaly scores": "TEMPORARY_OUTPUT",
                                     "fers:Scene anomaly mask": "TEMPORARY_OUTPUT"})
    log(f"the model ran: {sorted(results)}")
    then(1000, finish)  # the designer stays open: closing it would ask whether to keep the unsaved model


def finish():
    log("done")
    end_walk(0)


then(3000, start)
