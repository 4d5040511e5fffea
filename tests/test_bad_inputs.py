"""The bad-input matrix: what a user can throw at the detection algorithms, through processing.run as the toolbox
runs them. Each case ends in a clear message or a correct result, and never in a partial or corrupt output."""
import os
import random
import stat

import numpy as np
import pytest
from osgeo import gdal

pytest.importorskip("torch", reason="the FERS cases export a small model with torch")
pytest.importorskip("onnxruntime", reason="FERS models run with onnxruntime")

import processing  # noqa: E402
from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback  # noqa: E402

from tests.fers_models import ExportedModelSet  # noqa: E402
from tests.helpers import read_raster, write_raster  # noqa: E402

RX = "fers:detectanomaliesrx"
FERS = "fers:detectanomaliesfers"
NODATA_OUT = -9999.0

pytestmark = pytest.mark.usefixtures("fers_plugin")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return ExportedModelSet(tmp_path_factory.mktemp("model"), bands=6)


def noise(bands, rows, columns, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).normal(100, 10, size=(bands, rows, columns)).astype(dtype)


def leftovers(folder, expected=()):
    """Files in ``folder`` besides the inputs: partial outputs, temporary folders."""
    return sorted(name for name in os.listdir(folder) if name not in expected and not name.startswith("in"))


# (case, algorithm, input cube or writer, extra parameters, expected message)
def refused_cases(tmp_path, model):
    def raster(cube, **kwargs):
        return write_raster(tmp_path / "in.tif", cube, **kwargs)

    def corrupt():
        path = raster(noise(4, 20, 20))
        with open(path, "r+b") as handle:
            handle.truncate(os.path.getsize(path) // 3)
        return path

    def foreign_model():
        path = tmp_path / "in_foreign.spectral.onnx"
        with open(model.spatial_path, "rb") as source:  # a valid ONNX file without FERS metadata... nearly:
            content = source.read()
        path.write_bytes(content.replace(b"fers", b"xxxx"))
        return str(path)

    def truncated_model():
        path = tmp_path / "in_truncated.spectral.onnx"
        with open(model.spectral_path, "rb") as source:
            path.write_bytes(source.read()[:5000])
        return str(path)

    all_nodata = np.full((4, 10, 10), -1.0, dtype=np.float32)
    few_valid = np.full((8, 10, 10), -1.0, dtype=np.float32)
    few_valid[:, 0, :5] = noise(8, 1, 5)[:, 0]
    nan_band = noise(4, 10, 10)
    nan_band[2] = np.nan
    return {
        "single band": (RX, lambda: raster(noise(1, 10, 10)), {}, "at least 2 bands"),
        "fewer valid pixels than bands": (RX, lambda: raster(few_valid, nodata=-1.0), {}, "more valid pixels"),
        "all nodata": (RX, lambda: raster(all_nodata, nodata=-1.0), {}, "no valid pixels"),
        "a band entirely NaN": (RX, lambda: raster(nan_band), {}, "no valid pixels"),
        "1 x 1 raster": (RX, lambda: raster(noise(3, 1, 1)), {}, "more valid pixels"),
        "constant raster": (RX, lambda: raster(np.full((4, 9, 9), 7, np.float32)), {}, "constant"),
        "corrupted GeoTIFF": (RX, corrupt, {}, "cannot be read|failed"),
        "output path equal to input": (RX, lambda: raster(noise(4, 9, 9)), {"OUTPUT": "INPUT"}, "also an input"),
        "missing output folder": (RX, lambda: raster(noise(4, 9, 9)),
                                  {"OUTPUT": str(tmp_path / "nowhere" / "out.tif")}, "does not exist"),
        "output not a GeoTIFF": (RX, lambda: raster(noise(4, 9, 9)), {"OUTPUT": str(tmp_path / "out.png")},
                                 "GeoTIFF"),
        "FERS model with more bands than the raster": (FERS, lambda: raster(noise(4, 20, 20)), {}, "6 bands"),
        "FERS raster smaller than the model's smallest tile": (FERS, lambda: raster(noise(8, 3, 40)), {},
                                                               "needs at least"),
        "FERS foreign ONNX model": (FERS, lambda: raster(noise(8, 20, 20)), {"MODEL_FILE": foreign_model},
                                    "FERS|metadata|model"),
        "FERS truncated ONNX model": (FERS, lambda: raster(noise(8, 20, 20)), {"MODEL_FILE": truncated_model},
                                      "model|onnx|ONNX"),
    }


CASES = ["single band", "fewer valid pixels than bands", "all nodata", "a band entirely NaN", "1 x 1 raster",
         "constant raster", "corrupted GeoTIFF", "output path equal to input", "missing output folder",
         "output not a GeoTIFF", "FERS model with more bands than the raster",
         "FERS raster smaller than the model's smallest tile", "FERS foreign ONNX model", "FERS truncated ONNX model"]


@pytest.mark.parametrize("case", CASES)
def test_refused_with_a_clear_message_and_no_output(case, tmp_path, model):
    algorithm, make_input, extra, message = refused_cases(tmp_path, model)[case]
    source = make_input()
    parameters = {"INPUT": source, "OUTPUT": str(tmp_path / "out.tif")}
    if algorithm == FERS:
        parameters["MODEL_FILE"] = model.spectral_path
    for key, value in extra.items():
        parameters[key] = source if value == "INPUT" else value() if callable(value) else value
    with pytest.raises(QgsProcessingException, match=message):
        processing.run(algorithm, parameters)
    assert leftovers(tmp_path) == []
    assert not os.path.exists(str(tmp_path / "nowhere"))


def test_read_only_output_folder(tmp_path):
    source = write_raster(tmp_path / "in.tif", noise(4, 9, 9))
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root): a read-only folder cannot be made")
        with pytest.raises(QgsProcessingException, match="not writable"):
            processing.run(RX, {"INPUT": source, "OUTPUT": str(folder / "out.tif")})
    finally:
        folder.chmod(stat.S_IRWXU)
    assert os.listdir(folder) == []


def scores_of(algorithm, source, tmp_path, **extra):
    result = processing.run(algorithm, {"INPUT": source, "OUTPUT": str(tmp_path / "out.tif"), **extra})
    return read_raster(result["OUTPUT"]).cube_bhw[0]


def test_nan_and_inf_blocks_become_nodata_and_the_rest_is_scored(tmp_path):
    cube = noise(5, 30, 30)
    cube[:, 5:10, 5:10] = np.nan
    cube[2, 20:25, 0:30] = np.inf
    scores = scores_of(RX, write_raster(tmp_path / "in.tif", cube), tmp_path)
    invalid = np.zeros((30, 30), dtype=bool)
    invalid[5:10, 5:10] = invalid[20:25, :] = True
    np.testing.assert_array_equal(scores == NODATA_OUT, invalid)
    assert np.isfinite(scores).all() and (scores[~invalid] >= 0).all()


@pytest.mark.parametrize("problem", ["constant bands", "duplicated bands"])
def test_constant_and_duplicated_bands_do_not_change_rx(problem, tmp_path):
    cube = noise(4, 20, 20, seed=3)
    extra = np.full((2, 20, 20), 5.0, np.float32) if problem == "constant bands" else cube[:2]
    plain = scores_of(RX, write_raster(tmp_path / "in_plain.tif", cube), tmp_path)
    (tmp_path / "out.tif").unlink()
    padded = scores_of(RX, write_raster(tmp_path / "in_padded.tif", np.concatenate([cube, extra])), tmp_path)
    np.testing.assert_allclose(padded, plain, rtol=1e-4)


@pytest.mark.parametrize("dtype, nodata", [(gdal.GDT_UInt16, 65535), (gdal.GDT_Float64, -9.2e18),
                                           (gdal.GDT_Int16, -32768)])
def test_extreme_nodata_values_are_recognised(dtype, nodata, tmp_path):
    cube = noise(3, 12, 12, dtype=np.float64) * 10
    cube[:, 0, :4] = nodata
    scores = scores_of(RX, write_raster(tmp_path / "in.tif", cube, nodata=nodata, dtype=dtype), tmp_path)
    assert (scores[0, :4] == NODATA_OUT).all() and (scores[1:] != NODATA_OUT).all()
    assert np.isfinite(scores).all() and scores.max() < 1e6  # the fill value took no part in the statistics


def test_one_row_raster_is_scored(tmp_path):
    scores = scores_of(RX, write_raster(tmp_path / "in.tif", noise(3, 1, 200)), tmp_path)
    assert scores.shape == (1, 200) and (scores >= 0).all()


def test_five_hundred_bands(tmp_path):
    cube = noise(500, 30, 40, seed=9)
    cube[:, 10, 10] += 60
    scores = scores_of(RX, write_raster(tmp_path / "in.tif", cube), tmp_path)
    assert scores.shape == (30, 40) and np.unravel_index(scores.argmax(), scores.shape) == (10, 10)


def test_non_square_fers_raster_with_edge_tiles_and_nodata_holes(tmp_path, model):
    cube = noise(8, 37, 131, seed=4)
    cube[:, 3:6, 100:104] = -1.0
    scores = scores_of(FERS, write_raster(tmp_path / "in.tif", cube, nodata=-1.0), tmp_path,
                       MODEL_FILE=model.spectral_path)
    assert scores.shape == (37, 131)
    np.testing.assert_array_equal(scores == NODATA_OUT, cube[0] == -1.0)


@pytest.mark.parametrize("algorithm", [RX, FERS])
def test_cancel_at_a_random_block_leaves_no_output(algorithm, tmp_path, model):
    source = write_raster(tmp_path / "in.tif", noise(8, 200, 120, seed=2))
    cancel_at = random.Random(algorithm).uniform(5, 25)  # inside the first passes, before the last block

    class CancelAt(QgsProcessingFeedback):
        def setProgress(self, value):  # noqa: N802 (QGIS API)
            super().setProgress(value)
            if value >= cancel_at:
                self.cancel()

    parameters = {"INPUT": source, "OUTPUT": str(tmp_path / "out.tif")}
    if algorithm == FERS:
        parameters["MODEL_FILE"] = model.spectral_path
    with pytest.raises(QgsProcessingException, match="[Cc]ancel"):
        processing.run(algorithm, parameters, context=QgsProcessingContext(), feedback=CancelAt())
    assert leftovers(tmp_path) == []
