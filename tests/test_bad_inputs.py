"""The bad-input matrix: what a user can throw at the detection algorithms, through processing.run as the toolbox
runs them. Each case ends in a clear message or a correct result, and never in a partial or corrupt output."""
import os
import random
import re
import stat
import zipfile

import numpy as np
import pytest
from osgeo import gdal, osr

pytest.importorskip("torch", reason="the FERS cases export a small model with torch")
pytest.importorskip("onnxruntime", reason="FERS models run with onnxruntime")

import processing  # noqa: E402
from qgis.core import (QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback,  # noqa: E402
                       QgsRasterLayer)

from tests.fers_models import ExportedModelSet  # noqa: E402
from tests.helpers import TEST_GEOTRANSFORM, read_raster, same_crs, write_raster  # noqa: E402

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
    return {
        "single band": (RX, lambda: raster(noise(1, 10, 10)), {}, "at least 2 bands"),
        "fewer valid pixels than bands": (RX, lambda: raster(few_valid, nodata=-1.0), {}, "more valid pixels"),
        "all nodata": (RX, lambda: raster(all_nodata, nodata=-1.0), {}, "no valid pixels"),
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


CASES = ["single band", "fewer valid pixels than bands", "all nodata", "1 x 1 raster",
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
    cube[2, 20, 0:30] = np.inf  # 3% of the pixels: those pixels go, not the band (see the bad-band tests)
    scores = scores_of(RX, write_raster(tmp_path / "in.tif", cube), tmp_path)
    invalid = np.zeros((30, 30), dtype=bool)
    invalid[5:10, 5:10] = invalid[20, :] = True
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


# ---------------------------------------------------------------------------------------------------------------
# Sensor products (issue 12): bad bands, GDAL masks, undeclared fill, masks on another grid, GCP swaths.


class LogFeedback(QgsProcessingFeedback):
    """Keeps what the algorithm writes to the log."""

    def __init__(self):
        super().__init__()
        self.lines = []

    def pushInfo(self, info):  # noqa: N802 (QGIS API)
        super().pushInfo(info)
        self.lines.append(info)

    @property
    def text(self):
        return "\n".join(self.lines)


def run_logged(algorithm, parameters):
    """(outputs, log text) of a run through processing.run."""
    feedback = LogFeedback()
    return processing.run(algorithm, parameters, context=QgsProcessingContext(), feedback=feedback), feedback.text


def spiked(bands, rows, columns, spike_band, seed=0):
    """Noise with one pixel (5, 6) far out in ``spike_band`` (0-based) only."""
    cube = noise(bands, rows, columns, seed)
    cube[spike_band, 5, 6] += 400
    return cube


def test_water_bands_of_real_zeros_under_nodata_zero_are_left_out_not_the_pixels(tmp_path):
    # int16 reflectance declaring nodata=0 whose water-absorption bands hold real zeros on 80% of the pixels.
    cube = noise(12, 30, 30, dtype=np.float64) * 10
    cube[[5, 6]] = np.where(np.random.default_rng(1).random((30, 30)) < 0.8, 0, cube[[5, 6]])
    source = write_raster(tmp_path / "in.tif", cube, nodata=0, dtype=gdal.GDT_Int16)
    result, log = run_logged(RX, {"INPUT": source, "OUTPUT": str(tmp_path / "out.tif")})
    assert (read_raster(result["OUTPUT"]).cube_bhw[0] != NODATA_OUT).all()
    assert re.search(r"bands 6-7 \(NaN or nodata \(0\) on [78]\d% of the pixels", log)


def test_real_zeros_scattered_over_many_water_bands_leave_those_bands_out_not_the_pixels(tmp_path):
    # Before: each water band held real zeros on 1% of the pixels (under the 5% bad-band share), so no band was
    # bad, yet together they silently dropped ~11% of the scene's pixels.
    cube = noise(40, 40, 40, dtype=np.float64) * 10
    zeros = np.random.default_rng(5).random((12, 40, 40)) < 0.01
    cube[20:32][zeros] = 0
    source = write_raster(tmp_path / "in.tif", cube, nodata=0, dtype=gdal.GDT_Int16)
    result, log = run_logged(RX, {"INPUT": source, "OUTPUT": str(tmp_path / "out.tif")})
    assert (read_raster(result["OUTPUT"]).cube_bhw[0] != NODATA_OUT).all()
    assert re.search(r"bands 21-32 \(NaN or nodata \(0\) scattered over bands that together would leave out 1\d% "
                     r"of the pixels", log)


def test_pixels_left_out_for_nodata_in_a_few_bands_are_counted_per_band(tmp_path):
    cube = noise(6, 30, 30)
    cube[:, :, :3] = -1.0   # declared fill in every band
    cube[2, 4, 10:20] = -1.0  # a real pixel row under the nodata value in one band: 10 of 810 pixels
    cube[4, 9, 5:8] = np.nan
    result, log = run_logged(RX, {"INPUT": write_raster(tmp_path / "in.tif", cube, nodata=-1.0),
                                  "OUTPUT": str(tmp_path / "out.tif")})
    assert int((read_raster(result["OUTPUT"]).cube_bhw[0] == NODATA_OUT).sum()) == 90 + 13
    assert "90 pixels are nodata or NaN in every band" in log
    assert "pixels per band: band 3: 10, band 5: 3." in log


def test_a_band_entirely_nan_is_left_out_and_named(tmp_path):
    cube = spiked(5, 20, 20, spike_band=0)
    cube[2] = np.nan
    result, log = run_logged(RX, {"INPUT": write_raster(tmp_path / "in.tif", cube),
                                  "OUTPUT": str(tmp_path / "out.tif")})
    scores = read_raster(result["OUTPUT"]).cube_bhw[0]
    assert (scores != NODATA_OUT).all() and np.unravel_index(scores.argmax(), scores.shape) == (5, 6)
    assert "band 3 (no valid value: NaN everywhere)" in log


def test_bands_flagged_in_an_envi_bad_band_list_are_left_out(tmp_path):
    cube = spiked(6, 20, 20, spike_band=4)  # the anomaly shows only in the flagged band
    dataset = gdal.GetDriverByName("ENVI").Create(str(tmp_path / "in.img"), 20, 20, 6, gdal.GDT_Float32)
    dataset.SetMetadataItem("bbl", "{1, 1, 1, 1, 0, 1}", "ENVI")
    dataset.WriteArray(cube)
    dataset = None
    result, log = run_logged(RX, {"INPUT": str(tmp_path / "in.img"), "OUTPUT": str(tmp_path / "out.tif")})
    scores = read_raster(result["OUTPUT"]).cube_bhw[0]
    assert scores[5, 6] < np.percentile(scores, 99)
    assert "band 5 (marked bad in the ENVI bad-band list)" in log


def test_fers_fills_a_bad_model_band_from_its_neighbours_and_says_so(tmp_path, model):
    cube = noise(8, 24, 24)
    cube[2] = np.nan
    result, log = run_logged(FERS, {"INPUT": write_raster(tmp_path / "in.tif", cube),
                                    "MODEL_FILE": model.spectral_path, "OUTPUT": str(tmp_path / "out.tif")})
    assert (read_raster(result["OUTPUT"]).cube_bhw[0] != NODATA_OUT).all()
    assert "The model reads band 3, which is bad" in log and "interpolated between bands 2 and 4" in log


def write_with_gdal_mask(path, cube, fill_hw, kind):
    """A GeoTIFF whose fill is marked only by a GDAL mask: internal mask, .msk sidecar or alpha band."""
    bands, rows, columns = cube.shape
    options = ["PHOTOMETRIC=MINISBLACK"]
    count = bands + (1 if kind == "alpha band" else 0)
    gdal.SetConfigOption("GDAL_TIFF_INTERNAL_MASK", "NO" if kind == ".msk sidecar" else "YES")
    try:
        dataset = gdal.GetDriverByName("GTiff").Create(str(path), columns, rows, count, gdal.GDT_Float32, options)
        for index in range(bands):
            dataset.GetRasterBand(index + 1).WriteArray(cube[index])
        allowed = np.where(fill_hw, 0, 255).astype(np.uint8)
        if kind == "alpha band":
            dataset.GetRasterBand(count).SetColorInterpretation(gdal.GCI_AlphaBand)
            dataset.GetRasterBand(count).WriteArray(allowed)
        else:
            dataset.CreateMaskBand(gdal.GMF_PER_DATASET)
            dataset.GetRasterBand(1).GetMaskBand().WriteArray(allowed)
        dataset = None
    finally:
        gdal.SetConfigOption("GDAL_TIFF_INTERNAL_MASK", None)
    return str(path)


@pytest.mark.parametrize("kind", ["internal mask", ".msk sidecar", "alpha band"])
def test_fill_marked_by_a_gdal_mask_is_not_scored(kind, tmp_path):
    cube = noise(5, 20, 20)
    fill = np.zeros((20, 20), dtype=bool)
    fill[:, :7] = True
    cube[:, fill] = 5000.0  # garbage under the mask: it must take no part in the statistics
    source = write_with_gdal_mask(tmp_path / "in.tif", cube, fill, kind)
    assert os.path.exists(source + ".msk") == (kind == ".msk sidecar")
    result, log = run_logged(RX, {"INPUT": source, "OUTPUT": str(tmp_path / "out.tif")})
    scores = read_raster(result["OUTPUT"]).cube_bhw[0]
    np.testing.assert_array_equal(scores == NODATA_OUT, fill)
    (tmp_path / "out.tif").unlink()
    swath_only = scores_of(RX, write_raster(tmp_path / "in_swath.tif", cube[:, :, 7:]), tmp_path)
    np.testing.assert_allclose(scores[:, 7:], swath_only, rtol=1e-4)  # the masked 5000s took no part
    assert "140 pixels are fill by the raster's own mask" in log


@pytest.mark.parametrize("switch", [True, False])
def test_undeclared_zero_fill_is_left_out_and_counted_unless_turned_off(switch, tmp_path):
    cube = noise(6, 20, 20)
    cube[:, :, :5] = 0.0  # a swath edge written as zeros in every band, with no nodata declared
    result, log = run_logged(RX, {"INPUT": write_raster(tmp_path / "in.tif", cube), "UNDECLARED_FILL": switch,
                                  "OUTPUT": str(tmp_path / "out.tif")})
    scores = read_raster(result["OUTPUT"]).cube_bhw[0]
    assert ((scores[:, :5] == NODATA_OUT).all() and (scores[:, 5:] != NODATA_OUT).all()) == switch
    assert ("100 pixels hold one value in every band (0)" in log) == switch


@pytest.mark.parametrize("extent", ["same size, shifted", "smaller"])
def test_a_mask_on_another_grid_is_placed_pixel_by_pixel_and_masks_nothing_outside_its_extent(extent, tmp_path):
    # Before: every input pixel outside the mask's extent silently became nodata.
    cube = noise(4, 30, 40)
    source = write_raster(tmp_path / "in.tif", cube)
    x0, dx, _, y0, _, dy = TEST_GEOTRANSFORM
    rows, columns = (30, 40) if extent == "same size, shifted" else (12, 9)
    mask = np.ones((rows, columns), dtype=np.uint8)
    mask[0:10, 0:6] = 0
    mask[11, 2] = 0
    shifted = (x0 + 5 * dx, dx, 0.0, y0 + 3 * dy, 0.0, dy)  # 5 columns right, 3 rows down
    mask_path = write_raster(tmp_path / "in_mask.tif", mask, geotransform=shifted)
    result, log = run_logged(RX, {"INPUT": source, "MASK": mask_path, "OUTPUT": str(tmp_path / "out.tif")})
    expected_out = np.zeros((30, 40), dtype=bool)
    expected_out[3:13, 5:11] = True   # the mask's zeros, where they lie on the map
    expected_out[14, 7] = True
    np.testing.assert_array_equal(read_raster(result["OUTPUT"]).cube_bhw[0] == NODATA_OUT, expected_out)
    outside = 30 * 40 - min(rows, 27) * min(columns, 35)
    assert "resampled onto the input's grid" in log
    assert "The mask raster masked out 61 pixels (its zeros)" in log
    assert f"{outside} input pixels lie outside the mask raster's extent: they are not masked" in log


def test_a_mask_nodata_value_masks_out_and_is_counted_apart_from_its_zeros(tmp_path):
    source = write_raster(tmp_path / "in.tif", noise(4, 20, 20))
    mask = np.ones((20, 20), dtype=np.uint8)
    mask[0, :] = 0
    mask[1, :5] = 255
    result, log = run_logged(RX, {"INPUT": source, "MASK": write_raster(tmp_path / "in_mask.tif", mask, nodata=255),
                                  "OUTPUT": str(tmp_path / "out.tif")})
    np.testing.assert_array_equal(read_raster(result["OUTPUT"]).cube_bhw[0] == NODATA_OUT, mask != 1)
    assert "masked out 20 pixels (its zeros) and 5 pixels (its nodata value 255)" in log


@pytest.mark.parametrize("case, message", [
    ("another CRS elsewhere", "does not overlap"),
    ("no georeferencing, another size", "no map georeferencing"),
])
def test_a_mask_that_cannot_be_placed_is_refused(case, message, tmp_path):
    source = write_raster(tmp_path / "in.tif", noise(4, 30, 40))
    if case == "another CRS elsewhere":
        mask_path = write_raster(tmp_path / "in_mask.tif", np.ones((30, 40), np.uint8),
                                 geotransform=(10.0, 0.001, 0, 50.0, 0, -0.001), epsg=4326)
    else:
        mask_path = write_raster(tmp_path / "in_mask.tif", np.ones((20, 20), np.uint8),
                                 geotransform=(0, 1, 0, 0, 0, 1), epsg=None)
    with pytest.raises(QgsProcessingException, match=message):
        processing.run(RX, {"INPUT": source, "MASK": mask_path, "OUTPUT": str(tmp_path / "out.tif")})
    assert leftovers(tmp_path) == []


def write_gcp_swath(path, cube):
    """A swath georeferenced only by ground control points (EPSG:4326), rotated against north."""
    bands, rows, columns = cube.shape
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), columns, rows, bands, gdal.GDT_Float32,
                                                   ["PHOTOMETRIC=MINISBLACK"])
    dataset.WriteArray(cube)

    def place(row, column):  # ~10 m pixels, the swath heading 30 degrees east of north
        east, north = 1e-4 * (column * 0.866 + row * 0.5), 1e-4 * (column * 0.5 - row * 0.866)
        return 12.0 + east, 45.0 + north

    gcps = [gdal.GCP(*place(row, column), 0, column, row) for row in (0, rows) for column in (0, columns)]
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    dataset.SetGCPs(gcps, srs.ExportToWkt())
    dataset = None
    return str(path), place


def test_gcp_georeferencing_reaches_every_raster_output_and_places_the_objects(tmp_path):
    cube = spiked(5, 30, 40, spike_band=1)
    source, place = write_gcp_swath(tmp_path / "in.tif", cube)
    result = processing.run(RX, {"INPUT": source, "OUTPUT": str(tmp_path / "out.tif"),
                                 "ANOMALY_MASK": str(tmp_path / "mask.tif"), "THRESHOLD_RULE": 1,
                                 "THRESHOLD": 100.0, "OBJECTS": "memory:"})
    for output in (result["OUTPUT"], result["ANOMALY_MASK"]):
        written = gdal.Open(output)
        assert written.GetGCPCount() == 4 and same_crs(written.GetGCPProjection(), 4326)
    objects = result["OBJECTS"]
    layer = objects if hasattr(objects, "getFeatures") else QgsProcessingContext().getMapLayer(objects)
    assert layer.crs().authid() == "EPSG:4326"
    features = list(layer.getFeatures())
    assert len(features) == 1
    expected = place(5.5, 6.5)
    assert features[0]["peak_x"] == pytest.approx(expected[0], abs=1e-7)
    assert features[0]["peak_y"] == pytest.approx(expected[1], abs=1e-7)


def test_an_envi_header_chosen_as_input_names_the_data_file(tmp_path):
    dataset = gdal.GetDriverByName("ENVI").Create(str(tmp_path / "in.img"), 9, 9, 4, gdal.GDT_Float32)
    dataset.WriteArray(noise(4, 9, 9))
    dataset = None
    with pytest.raises(QgsProcessingException, match=r"ENVI header; choose the data file .*in\.img"):
        processing.run(RX, {"INPUT": str(tmp_path / "in.hdr"), "OUTPUT": str(tmp_path / "out.tif")})
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------------------------------------
# Inputs of issue 21: rasters inside a ZIP, masks covering part of the scene, real data equal to nodata.


def zipped(folder, *paths) -> str:
    """A ZIP of ``paths`` (as many portals deliver); returns the ZIP's path."""
    archive = os.path.join(str(folder), "in_delivery.zip")
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in paths:
            bundle.write(path, os.path.basename(path))
    return archive


@pytest.mark.parametrize("given_as", ["path", "layer"])
def test_a_raster_inside_a_zip_is_read_in_place(given_as, tmp_path):
    cube = spiked(4, 20, 20, spike_band=1)
    scene = write_raster(tmp_path / "in_scene.tif", cube)
    mask = np.ones((20, 20), np.uint8)
    mask[0, :] = 0
    mask_path = write_raster(tmp_path / "in_mask.tif", mask)
    archive = zipped(tmp_path, scene, mask_path)
    source = f"/vsizip/{archive}/in_scene.tif"
    value = QgsRasterLayer(source, "scene", "gdal") if given_as == "layer" else source
    result = processing.run(RX, {"INPUT": value, "MASK": f"/vsizip/{archive}/in_mask.tif",
                                 "OUTPUT": str(tmp_path / "out.tif")})
    zipped_scores = read_raster(result["OUTPUT"]).cube_bhw[0]
    (tmp_path / "out.tif").unlink()
    plain = scores_of(RX, scene, tmp_path, MASK=mask_path)
    np.testing.assert_array_equal(zipped_scores, plain)
    assert (zipped_scores[0] == NODATA_OUT).all() and np.unravel_index(zipped_scores.argmax(), (20, 20)) == (5, 6)


def test_a_wrong_path_inside_a_zip_is_refused_with_the_path(tmp_path):
    archive = zipped(tmp_path, write_raster(tmp_path / "in_scene.tif", noise(4, 9, 9)))
    with pytest.raises(QgsProcessingException, match=r"GDAL cannot open .*in_delivery\.zip/other\.tif"):
        processing.run(RX, {"INPUT": f"/vsizip/{archive}/other.tif", "OUTPUT": str(tmp_path / "out.tif")})
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("order", [("band", "y", "x"), ("y", "x", "band"), ("band", "x", "y")])
def test_a_cf_netcdf_cube_scores_like_the_same_cube_as_geotiff(order, tmp_path):
    # Before: rows stored south to north (or a (band, x, y) cube) were scored misplaced, as noise against truth.
    pytest.importorskip("netCDF4", reason="building the NetCDF cube needs netCDF4 (Debian python3-netcdf4)")
    from tests.product_files import write_cf_cube

    cube = spiked(5, 20, 24, spike_band=2)
    netcdf = write_cf_cube(tmp_path / "in_cube.nc", cube, order, north_up=False)
    result = processing.run(RX, {"INPUT": netcdf, "OUTPUT": str(tmp_path / "out.tif")})
    written = read_raster(result["OUTPUT"])
    (tmp_path / "out.tif").unlink()
    np.testing.assert_allclose(written.cube_bhw[0], scores_of(RX, write_raster(tmp_path / "in.tif", cube), tmp_path),
                               rtol=1e-5)
    assert written.geotransform == pytest.approx(TEST_GEOTRANSFORM)
