"""Two detections running at the same time, as QGIS runs algorithms in background tasks, do not interfere."""
import numpy as np
import pytest
from qgis.core import QgsApplication, QgsProcessingAlgRunnerTask, QgsProcessingContext, QgsProcessingFeedback
from qgis.PyQt.QtCore import QEventLoop, QTimer

pytest.importorskip("torch", reason="the FERS task exports a small model with torch")
pytest.importorskip("onnxruntime", reason="FERS models run with onnxruntime")

import processing  # noqa: E402

from tests.fers_models import ExportedModelSet  # noqa: E402
from tests.helpers import read_raster, write_raster  # noqa: E402

pytestmark = pytest.mark.usefixtures("fers_plugin")


def test_simultaneous_rx_and_fers_tasks_give_the_results_of_sequential_runs(tmp_path):
    rng = np.random.default_rng(8)
    (tmp_path / "models").mkdir()
    models = ExportedModelSet(tmp_path / "models", bands=6)
    first = write_raster(tmp_path / "first.tif", rng.normal(100, 10, size=(8, 300, 200)).astype(np.float32))
    second = write_raster(tmp_path / "second.tif", rng.normal(50, 5, size=(8, 180, 260)).astype(np.float32))
    jobs = [("fers:detectanomaliesrx", {"INPUT": first}), ("fers:detectanomaliesfers",
                                                            {"INPUT": second, "MODEL_FILE": models.spectral_path}),
            ("fers:detectanomaliesrx", {"INPUT": second})]
    expected = []
    for index, (algorithm_id, parameters) in enumerate(jobs):
        output = str(tmp_path / f"sequential{index}.tif")
        processing.run(algorithm_id, {**parameters, "OUTPUT": output})
        expected.append(read_raster(output).cube_bhw)

    outcomes, tasks, keep = {}, [], []
    loop = QEventLoop()
    for index, (algorithm_id, parameters) in enumerate(jobs):
        algorithm = QgsApplication.processingRegistry().createAlgorithmById(algorithm_id)
        context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
        keep += [algorithm, context, feedback]
        task = QgsProcessingAlgRunnerTask(algorithm, {**parameters, "OUTPUT": str(tmp_path / f"task{index}.tif")},
                                          context, feedback)
        task.executed.connect(lambda ok, results, index=index: (outcomes.update({index: ok}),
                                                                len(outcomes) == len(jobs) and loop.quit()))
        tasks.append(task)
    for task in tasks:
        QgsApplication.taskManager().addTask(task)
    QTimer.singleShot(120000, loop.quit)
    loop.exec_()
    assert outcomes == {index: True for index in range(len(jobs))}
    for index, cube in enumerate(expected):
        np.testing.assert_array_equal(read_raster(str(tmp_path / f"task{index}.tif")).cube_bhw, cube)
