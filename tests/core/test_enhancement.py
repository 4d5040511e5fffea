"""FERS enhancement and detection in the core: tiled ONNX inference equals in-memory references, and every way a
model or raster can be wrong ends in a sentence, with nothing left on disk."""
import os
import sys

import numpy as np
import pytest

pytest.importorskip("torch", reason="the test models are built and exported with torch")
pytest.importorskip("onnxruntime", reason="FERS models run with onnxruntime")

from fers_qgis.core.detection import RxOptions, detect_rx  # noqa: E402
from fers_qgis.core.enhancement import FersOptions, detect_fers, enhance_features  # noqa: E402
from fers_qgis.core.errors import Cancelled, InputError  # noqa: E402
from fers_qgis.core.onnx_runtime import MissingDependency, load_model_set, shipped_model_for  # noqa: E402
from fers_qgis.core.progress import Progress  # noqa: E402
from fers_qgis.core.output import OUTPUT_NODATA  # noqa: E402
from tests.fers_models import (ExportedModelSet, normalised_first_bands, reference_rx,  # noqa: E402
                               TinySpectralBranch, _export)
from tests.helpers import read_raster, set_wavelengths, write_raster  # noqa: E402

BANDS = 6


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """One 6-band 'first' model set (sum fusion) for the whole module: exporting costs about a second."""
    return ExportedModelSet(tmp_path_factory.mktemp("models"), bands=BANDS)


def scene_cube(rows, columns, bands=8, seed=0):
    """Correlated bands with smooth spatial structure, so both branches see something to work on."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:rows, 0:columns] / 10.0
    structure = np.stack([np.sin(yy * (1 + k / 3)) + np.cos(xx * (1 + k / 5)) for k in range(bands)])
    mixing = rng.normal(size=(bands, bands)) + 2 * np.eye(bands)
    noise = np.einsum("cd,dhw->chw", mixing, rng.normal(size=(bands, rows, columns)))
    return (100 + 20 * structure + 5 * noise).astype(np.float32)


def output_files(folder):
    return sorted(name for name in os.listdir(folder) if not name.startswith("in"))


def band_values(path):
    content = read_raster(path)
    return content.cube_bhw.astype(np.float64), content


@pytest.mark.parametrize("budget_mb", [0.01, 0.5, 512])
def test_tiled_features_equal_untiled_model_on_odd_sized_raster(tmp_path, models, budget_mb):
    cube = scene_cube(70, 53)
    source = write_raster(tmp_path / "in.tif", cube)
    enhanced, spectral, spatial = (str(tmp_path / name) for name in ("enh.tif", "spe.tif", "spa.tif"))
    enhance_features(source, enhanced, models.spectral_path, spectral_output=spectral, spatial_output=spatial,
                     memory_budget_mb=budget_mb)
    x = normalised_first_bands(cube, BANDS, np.ones((70, 53), dtype=bool))
    spe_expected = models.spectral_reference(x)
    spa_expected = models.spatial_reference(x)
    spe, _ = band_values(spectral)
    spa, _ = band_values(spatial)
    assert spe_expected.max() > 0.1 and spa_expected.max() > 0.01  # the branches are not trivially zero
    np.testing.assert_allclose(spe, spe_expected, atol=1e-5 * max(1.0, spe_expected.max()))
    np.testing.assert_allclose(spa, spa_expected, atol=1e-5 * max(1.0, spa_expected.max()))
    out, content = band_values(enhanced)
    np.testing.assert_allclose(out, x + spe_expected + spa_expected, atol=2e-5 * max(1.0, spe_expected.max()))
    assert content.data_types == ("Float32",) * BANDS
    assert content.band_names[0] == "Band 1 (enhanced)"


def test_spatial_tiles_overlap_in_both_directions(tmp_path, models):
    cube = scene_cube(100, 90, seed=1)
    source = write_raster(tmp_path / "in.tif", cube)
    spatial = str(tmp_path / "spa.tif")
    enhance_features(source, str(tmp_path / "enh.tif"), models.spectral_path, spatial_output=spatial,
                     memory_budget_mb=0.01)
    x = normalised_first_bands(cube, BANDS, np.ones((100, 90), dtype=bool))
    expected = models.spatial_reference(x)
    np.testing.assert_allclose(band_values(spatial)[0], expected, atol=1e-5 * max(1.0, expected.max()))


def fers_reference(models, cube, valid, detector, fusion="sum"):
    x = normalised_first_bands(cube, BANDS, valid).astype(np.float64)
    spe, spa = models.spectral_reference(x), models.spatial_reference(x)
    if detector == "rx":
        return reference_rx(x, valid)
    if detector == "fers-spectral":
        return reference_rx(x + spe, valid)
    if detector == "fers-spatial":
        return reference_rx(x + spa, valid)
    if fusion in ("product", "product-rx"):
        def minmax(scores):
            return (scores - np.nanmin(scores)) / (np.nanmax(scores) - np.nanmin(scores))
        product = minmax(reference_rx(x + spa, valid)) * minmax(reference_rx(x + spe, valid))
        return product * minmax(reference_rx(x, valid)) if fusion == "product-rx" else product
    return reference_rx(x + spa + spe, valid)


@pytest.mark.parametrize("detector, fusion, budget_mb", [
    ("fers", None, 0.01), ("fers", None, 512), ("fers", "product", 512), ("fers", "product-rx", 0.01),
    ("fers", "product-rx", 512), ("fers-spectral", None, 5),
    ("fers-spectral", None, 8), ("fers-spatial", None, 512), ("rx", None, 0.01)])
def test_detectors_equal_in_memory_reference(tmp_path, models, detector, fusion, budget_mb):
    cube = scene_cube(70, 53, seed=2)
    source = write_raster(tmp_path / "in.tif", cube)
    output = str(tmp_path / "scores.tif")
    summary = detect_fers(source, output, models.spectral_path,
                          FersOptions(detector=detector, fusion=fusion, memory_budget_mb=budget_mb))
    expected = fers_reference(models, cube, np.ones((70, 53), dtype=bool), detector, fusion or "sum")
    scores, content = band_values(output)
    np.testing.assert_allclose(scores[0], expected, rtol=1e-4, atol=1e-4 * expected.max())
    assert summary.valid_pixels == 70 * 53 and summary.bands_used == BANDS
    assert output_files(tmp_path) == ["scores.tif"]  # the temporary cubes are gone
    assert content.nodata == (OUTPUT_NODATA,)


def test_scaled_scores_span_zero_to_one(tmp_path, models):
    cube = scene_cube(40, 45, seed=3)
    source = write_raster(tmp_path / "in.tif", cube)
    output = str(tmp_path / "scores.tif")
    detect_fers(source, output, models.spectral_path, FersOptions(scale_scores=True))
    expected = fers_reference(models, cube, np.ones((40, 45), dtype=bool), "fers")
    expected = (expected - expected.min()) / (expected.max() - expected.min())
    scores = band_values(output)[0][0]
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    assert scores.min() == 0.0 and abs(scores.max() - 1.0) < 1e-6


def test_local_fers_equals_local_rx_of_the_enhanced_cube(tmp_path, models):
    cube = scene_cube(30, 35, seed=4)
    source = write_raster(tmp_path / "in.tif", cube)
    enhanced = str(tmp_path / "enh.tif")
    enhance_features(source, enhanced, models.spectral_path)
    local_of_enhanced = str(tmp_path / "local_rx.tif")
    detect_rx(enhanced, local_of_enhanced, RxOptions(detector="local", inner_window=3, outer_window=11))
    output = str(tmp_path / "fers_local.tif")
    detect_fers(source, output, models.spectral_path,
                FersOptions(detector="fers-local", inner_window=3, outer_window=11))
    expected = band_values(local_of_enhanced)[0][0]
    np.testing.assert_allclose(band_values(output)[0][0], expected, rtol=1e-4, atol=1e-4 * expected.max())


def test_nodata_and_nan_pixels_are_left_out_and_written_as_nodata(tmp_path, models):
    cube = scene_cube(50, 41, seed=5)
    invalid = np.zeros((50, 41), dtype=bool)
    cube[:, 10:14, 20:25] = -1000.0
    invalid[10:14, 20:25] = True
    cube[3, 30, 5] = np.nan
    invalid[30, 5] = True
    cube[7, 0, 0] = np.nan  # band 8 is not a model band: its NaN does not matter to a first-6-bands model
    source = write_raster(tmp_path / "in.tif", cube, nodata=-1000.0)
    output = str(tmp_path / "scores.tif")
    summary = detect_fers(source, output, models.spectral_path)
    scores = band_values(output)[0][0]
    assert np.all(scores[invalid] == OUTPUT_NODATA)
    assert np.all(np.isfinite(scores[~invalid])) and np.all(scores[~invalid] >= 0)
    assert summary.valid_pixels == (~invalid).sum()
    cube = np.where(invalid[None], 0.0, cube)
    expected = fers_reference(models, cube, ~invalid, "fers")
    np.testing.assert_allclose(scores[~invalid], expected[~invalid], rtol=1e-4, atol=1e-4 * np.nanmax(expected))


@pytest.mark.parametrize("height, width", [(20, 30), (9, 12), (100, 25)])
def test_raster_smaller_than_a_tile(tmp_path, models, height, width):
    cube = scene_cube(height, width, seed=6)
    source = write_raster(tmp_path / "in.tif", cube)
    output = str(tmp_path / "scores.tif")
    detect_fers(source, output, models.spectral_path)
    expected = fers_reference(models, cube, np.ones((height, width), dtype=bool), "fers")
    np.testing.assert_allclose(band_values(output)[0][0], expected, rtol=1e-4, atol=1e-4 * expected.max())


def test_resample_model_carries_interpolated_wavelengths(tmp_path):
    models = ExportedModelSet(tmp_path, bands=4, band_mode="resample", name="resample")
    cube = scene_cube(24, 26, bands=7)
    source = write_raster(tmp_path / "in.tif", cube)
    from osgeo import gdal
    dataset = gdal.Open(source, gdal.GA_Update)
    for index in range(7):
        dataset.GetRasterBand(index + 1).SetMetadata({"wavelength": str(400 + 50 * index),
                                                      "wavelength_units": "nm"})
    dataset = None
    output = str(tmp_path / "enh.tif")
    enhance_features(source, output, models.spectral_path)
    dataset = gdal.Open(output)
    wavelengths = [float(dataset.GetRasterBand(i + 1).GetMetadata()["wavelength"]) for i in range(4)]
    assert wavelengths == [400.0, 500.0, 600.0, 700.0]
    assert dataset.GetRasterBand(2).GetDescription() == "Model band 2 (500.0 nm) (enhanced)"


def test_raster_thinner_than_the_spectral_branch_accepts_is_refused(tmp_path, models):
    source = write_raster(tmp_path / "in.tif", scene_cube(8, 40))
    with pytest.raises(InputError, match="is 40 x 8 pixels; this model needs at least 9 x 9"):
        detect_fers(source, str(tmp_path / "scores.tif"), models.spectral_path)
    assert output_files(tmp_path) == []


def test_first_bands_model_carries_the_source_band_names_and_wavelengths(tmp_path, models):
    from osgeo import gdal
    source = write_raster(tmp_path / "in.tif", scene_cube(20, 22))
    dataset = gdal.Open(source, gdal.GA_Update)
    for index in range(8):
        band = dataset.GetRasterBand(index + 1)
        band.SetDescription(f"B{index + 1:02d}")
        band.SetMetadata({"wavelength": str(0.45 + 0.01 * index), "wavelength_units": "micrometers"})
    dataset = None
    output = str(tmp_path / "enh.tif")
    enhance_features(source, output, models.spectral_path)
    dataset = gdal.Open(output)
    bands = [dataset.GetRasterBand(index + 1) for index in range(dataset.RasterCount)]
    assert [band.GetDescription() for band in bands] == [f"B{index + 1:02d} (enhanced)" for index in range(6)]
    wavelengths = [float(band.GetMetadata()["wavelength"]) for band in bands]
    np.testing.assert_allclose(wavelengths, [450 + 10 * index for index in range(6)])


def test_first_bands_model_on_too_few_bands_names_the_alternatives(tmp_path, models):
    source = write_raster(tmp_path / "in.tif", scene_cube(20, 20, bands=4))
    output = str(tmp_path / "scores.tif")
    with pytest.raises(InputError, match="resample"):
        detect_fers(source, output, models.spectral_path)
    assert output_files(tmp_path) == []


def broken_copies(folder, models):
    """Damaged and foreign model files, each as a spectral file next to a good spatial companion."""
    with open(models.spectral_path, "rb") as handle:
        good = handle.read()
    paths = {}
    paths["random bytes"] = os.path.join(folder, "random.onnx")
    with open(paths["random bytes"], "wb") as handle:
        handle.write(np.random.default_rng(0).bytes(2000))
    paths["truncated"] = os.path.join(folder, "truncated.onnx")
    with open(paths["truncated"], "wb") as handle:
        handle.write(good[:len(good) // 2])
    paths["foreign"] = _export(TinySpectralBranch(BANDS).eval(), __import__("torch").zeros(1, BANDS, 16, 16),
                               os.path.join(folder, "foreign.onnx"), {"cube": {2: "h", 3: "w"}})
    paths["spatial branch"] = models.spatial_path
    paths["no companion"] = os.path.join(folder, "alone.spectral.onnx")
    with open(paths["no companion"], "wb") as handle:
        handle.write(good)  # names tiny.spatial.onnx, which is not in this folder
    paths["missing"] = os.path.join(folder, "nothing-here.onnx")
    return paths


def test_damaged_or_foreign_models_are_refused_with_a_sentence(tmp_path, models):
    source = write_raster(tmp_path / "in.tif", scene_cube(20, 20))
    model_folder = tmp_path / "bad"
    model_folder.mkdir()
    for problem, path in broken_copies(str(model_folder), models).items():
        with pytest.raises(InputError) as raised:
            detect_fers(source, str(tmp_path / "scores.tif"), path)
        message = str(raised.value)
        assert "Traceback" not in message and message.endswith("."), (problem, message)
        assert output_files(tmp_path) == ["bad"], problem
    with pytest.raises(InputError, match="not a FERS model"):
        load_model_set(str(model_folder / "foreign.onnx"))


def test_missing_onnxruntime_says_how_to_install_it(tmp_path, models, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` raise ImportError
    source = write_raster(tmp_path / "in.tif", scene_cube(20, 20))
    with pytest.raises(MissingDependency, match="onnxruntime is not installed.*Install FERS dependencies"):
        detect_fers(source, str(tmp_path / "scores.tif"), models.spectral_path)
    assert output_files(tmp_path) == []


class CancelAt(Progress):
    """Cancels once progress has reached a fraction: 0.05 falls in the statistics pass, 0.3 in the feature pass,
    0.8 in RX scoring, 0.97 in the final scaling pass."""

    def __init__(self, fraction):
        self.fraction = fraction
        self.reached = 0.0
        self.cancelled = False

    def set_fraction(self, fraction):
        self.reached = fraction

    def is_cancelled(self):
        self.cancelled = self.cancelled or self.reached >= self.fraction
        return self.cancelled


@pytest.mark.parametrize("fraction", [0.0, 0.05, 0.3, 0.8, 0.97])
def test_cancel_leaves_nothing_behind(tmp_path, models, fraction):
    source = write_raster(tmp_path / "in.tif", scene_cube(40, 40))
    progress = CancelAt(fraction)
    with pytest.raises(Cancelled):
        detect_fers(source, str(tmp_path / "scores.tif"), models.spectral_path,
                    FersOptions(memory_budget_mb=0.01, scale_scores=True), progress=progress)
    assert progress.reached >= fraction
    assert output_files(tmp_path) == []


def test_mask_limits_the_pixels_used_and_scored(tmp_path, models):
    cube = scene_cube(30, 33, seed=7)
    mask = np.ones((30, 33), dtype=np.uint8)
    mask[5:12, :10] = 0
    source = write_raster(tmp_path / "in.tif", cube)
    mask_path = write_raster(tmp_path / "in_mask.tif", mask)
    output = str(tmp_path / "scores.tif")
    detect_fers(source, output, models.spectral_path, mask_path=mask_path)
    scores = band_values(output)[0][0]
    expected = fers_reference(models, cube, mask == 1, "fers")
    assert np.all(scores[mask == 0] == OUTPUT_NODATA)
    np.testing.assert_allclose(scores[mask == 1], expected[mask == 1], rtol=1e-4, atol=1e-4 * np.nanmax(expected))


class Recording(Progress):
    """Collects a job's progress fractions and log lines."""

    def __init__(self):
        self.fractions = []
        self.messages = []

    def set_fraction(self, fraction):
        self.fractions.append(fraction)

    def info(self, message):
        self.messages.append(message)


@pytest.mark.parametrize("options", [FersOptions(memory_budget_mb=0.01),
                                     FersOptions(fusion="product", scale_scores=True, memory_budget_mb=0.01)])
def test_progress_rises_monotonically_to_one(tmp_path, models, options):
    source = write_raster(tmp_path / "in.tif", scene_cube(40, 40))
    progress = Recording()
    detect_fers(source, str(tmp_path / "scores.tif"), models.spectral_path, options, progress=progress)
    assert progress.fractions == sorted(progress.fractions)
    assert progress.fractions[-1] == pytest.approx(1.0)


def test_spectral_tiles_never_thinner_than_the_exported_minimum(tmp_path, models, monkeypatch):
    """Blocks of one row or column at the image edge are grown inward: exported branches accept >= 2 halo + 1."""
    from fers_qgis.core import onnx_runtime
    shapes = []
    original = onnx_runtime.FersModelSet.spectral_features

    def recording(self, tile_bhw):
        shapes.append(tile_bhw.shape[1:])
        return original(self, tile_bhw)

    monkeypatch.setattr(onnx_runtime.FersModelSet, "spectral_features", recording)
    cube = scene_cube(33, 49)  # 2 x 16 + 1 rows, 3 x 16 + 1 columns: 16-pixel blocks leave 1-pixel ones
    source = write_raster(tmp_path / "in.tif", cube)
    spectral = str(tmp_path / "spe.tif")
    enhance_features(source, str(tmp_path / "enh.tif"), models.spectral_path, spectral_output=spectral,
                     memory_budget_mb=0.01)
    assert min(min(shape) for shape in shapes) >= 9
    x = normalised_first_bands(cube, BANDS, np.ones((33, 49), dtype=bool))
    expected = models.spectral_reference(x)
    np.testing.assert_allclose(band_values(spectral)[0], expected, atol=1e-5 * max(1.0, expected.max()))


def test_automatic_choice_reads_the_most_of_the_spectrum(tmp_path):
    sets = {name: ExportedModelSet(tmp_path, bands=bands, band_mode=mode, name=name).spectral_path
            for name, bands, mode in (("b4", 4, "first"), ("b8", 8, "first"), ("b8r", 8, "resample"),
                                      ("b6r", 6, "resample"))}
    paths = list(sets.values())
    assert shipped_model_for(4, paths) == sets["b4"]     # every set keeps all 4 bands; b4 interpolates none
    assert shipped_model_for(7, paths) == sets["b8r"]    # all 7 bands kept (b6r would merge some)
    assert shipped_model_for(8, paths) == sets["b8"]     # a tie goes to the published "first" mode
    assert shipped_model_for(500, paths) == sets["b8r"]  # the whole spectrum, not its first 8 bands
    assert shipped_model_for(3, paths) == sets["b6r"]    # fewer bands than any set: the fewest interpolated
    with pytest.raises(InputError, match="3 bands, and no shipped model set can read it .*b4 at least 4; b8 at "
                                         "least 8"):
        shipped_model_for(3, [sets["b4"], sets["b8"]])
    with pytest.raises(InputError, match="No model is shipped"):
        shipped_model_for(8, [])


def test_a_loaded_model_set_is_reused_until_one_of_its_files_changes(tmp_path):
    models = ExportedModelSet(tmp_path, bands=4, name="cached")
    first = load_model_set(models.spectral_path)
    assert load_model_set(models.spectral_path) is first
    with open(models.spatial_path, "r+b") as handle:  # the companion damaged in place
        handle.truncate(100)
    with pytest.raises(InputError, match="cached.spatial.onnx cannot be loaded"):
        load_model_set(models.spectral_path)


def test_a_few_saturated_pixels_no_longer_change_the_other_scores(tmp_path):
    """Six pixels at 65535 in every band: with the robust range the scores elsewhere stay as they were; with the
    exact scene min-max (models written before the robust range) every other pixel is squeezed and they do not."""
    cube = scene_cube(60, 60)
    saturated_pixels = [(5, 7), (12, 40), (30, 30), (44, 10), (50, 52), (20, 22)]
    saturated = cube.copy()
    far_hw = np.ones((60, 60), dtype=bool)
    for row, column in saturated_pixels:
        saturated[:, row, column] = 65535
        far_hw[max(row - 6, 0):row + 7, max(column - 6, 0):column + 7] = False  # beyond the branches' reach
    sources = [write_raster(tmp_path / f"in{index}.tif", data) for index, data in enumerate((cube, saturated))]
    correlation, log = {}, Recording()
    for normalisation in ("robust", "minmax"):
        models = ExportedModelSet(tmp_path, bands=BANDS, normalisation=normalisation, name=normalisation)
        scores = []
        for index, source in enumerate(sources):
            output = str(tmp_path / f"{normalisation}{index}.tif")
            # The undeclared-fill rule would leave pixels at one value in every band out: off, so they are scored.
            detect_fers(source, output, models.spectral_path, FersOptions(undeclared_fill=False),
                        progress=log if normalisation == "robust" else None)
            scores.append(band_values(output)[0][0][far_hw])
        correlation[normalisation] = np.corrcoef(*scores)[0, 1]
    assert correlation["robust"] > 0.99
    assert correlation["minmax"] < 0.9
    assert sum("were clipped" in message for message in log.messages) == 1  # said for the saturated scene only


def test_model_with_training_wavelengths_is_fed_by_wavelength(tmp_path):
    """A model trained on bands at 450-500 nm reads those bands of a raster listing 400-550 nm backwards, and
    interpolates where the raster's bands fall between."""
    cube = scene_cube(24, 26, bands=16)
    wavelengths = [550.0 - 10 * band for band in range(16)]   # descending, as PRISMA's VNIR cube
    source = set_wavelengths(write_raster(tmp_path / "in.tif", cube), wavelengths)
    trained = [450.0, 460.0, 470.0, 480.0, 490.0, 495.0]
    models = ExportedModelSet(tmp_path, bands=BANDS, wavelengths_nm=trained, name="by_wavelength")
    output = str(tmp_path / "enh.tif")
    log = Recording()
    enhance_features(source, output, models.spectral_path, progress=log)
    assert any("450-495 nm, as trained) are taken from the raster by wavelength" in line for line in log.messages)
    from osgeo import gdal
    written = gdal.Open(output)
    assert [float(written.GetRasterBand(i + 1).GetMetadata()["wavelength"]) for i in range(BANDS)] == trained
    assert written.GetRasterBand(1).GetDescription() == "Band 11 (enhanced)"   # 450 nm is the raster's band 11
    assert written.GetRasterBand(6).GetDescription() == "Model band 6 (495.0 nm) (enhanced)"


def test_descending_raster_feeds_a_first_bands_model_from_the_short_end(tmp_path, models):
    wavelengths = [900.0 - 50 * band for band in range(8)]   # PRISMA's VNIR order: long to short
    source = set_wavelengths(write_raster(tmp_path / "in.tif", scene_cube(20, 22)), wavelengths)
    output = str(tmp_path / "enh.tif")
    log = Recording()
    enhance_features(source, output, models.spectral_path, progress=log)
    assert any("from long to short wavelengths" in line for line in log.messages)
    from osgeo import gdal
    written = gdal.Open(output)
    assert [float(written.GetRasterBand(i + 1).GetMetadata()["wavelength"]) for i in range(BANDS)] == \
        [550.0, 600.0, 650.0, 700.0, 750.0, 800.0]
    assert written.GetRasterBand(1).GetDescription() == "Band 8 (enhanced)"


@pytest.mark.parametrize("budget_mb", [0.01, 512])
def test_a_scene_inside_a_fill_margin_scores_exactly_like_the_scene(tmp_path, models, budget_mb):
    """Products often hold their data inside fill (a clipped flight line, a tile edge): the networks run on the
    window around the valid pixels, so the margin changes neither the features nor the scores."""
    cube = scene_cube(45, 38, seed=8)
    canvas = np.full((cube.shape[0], 45 + 13 + 30, 38 + 21 + 7), -9999.0, dtype=np.float32)
    inside = (slice(13, 13 + 45), slice(21, 21 + 38))
    canvas[(slice(None),) + inside] = cube
    scene, padded = write_raster(tmp_path / "in.tif", cube), write_raster(tmp_path / "in_padded.tif", canvas,
                                                                          nodata=-9999.0)
    for source in (scene, padded):
        stem = source[:-4]
        detect_fers(source, stem + "_scores.tif", models.spectral_path, FersOptions(memory_budget_mb=budget_mb))
        enhance_features(source, stem + "_enh.tif", models.spectral_path, memory_budget_mb=budget_mb)
    for suffix in ("_scores.tif", "_enh.tif"):
        expected = band_values(scene[:-4] + suffix)[0]
        values = band_values(padded[:-4] + suffix)[0]
        np.testing.assert_allclose(values[(slice(None),) + inside], expected, rtol=1e-5,
                                   atol=1e-5 * np.abs(expected).max())
        outside = np.ones(canvas.shape[1:], dtype=bool)
        outside[inside] = False
        assert np.all(values[:, outside] == OUTPUT_NODATA), suffix


def test_valid_pixels_thinner_than_the_spectral_branch_accepts_are_scored(tmp_path, models):
    """A valid strip narrower than 2 halo + 1 pixels: the networks' window grows into the fill around it."""
    canvas = np.full((BANDS, 30, 40), -9999.0, dtype=np.float32)
    canvas[:, 5:25, 17:20] = scene_cube(20, 3, bands=BANDS, seed=9)
    source = write_raster(tmp_path / "in.tif", canvas, nodata=-9999.0)
    detect_fers(source, str(tmp_path / "scores.tif"), models.spectral_path)
    scores = band_values(str(tmp_path / "scores.tif"))[0][0]
    assert np.all(np.isfinite(scores[5:25, 17:20])) and np.all(scores[5:25, 17:20] >= 0)
    assert (scores != OUTPUT_NODATA).sum() == 60


def test_scores_do_not_depend_on_the_memory_budget_when_the_range_is_sampled(tmp_path, monkeypatch):
    """A scene larger than the robust range's sample (made small here): before, each block of pass 1 kept every
    k-th of its own pixels, so the memory budget moved the range's extremes and with them every score."""
    import fers_qgis.core.spectral as spectral
    monkeypatch.setattr(spectral, "SAMPLE_VALUES", 3000)
    cube = scene_cube(64, 61, bands=BANDS, seed=4)
    cube += np.random.default_rng(4).standard_t(2, size=cube.shape).astype(np.float32) * 3  # heavy tails
    source = write_raster(tmp_path / "in.tif", cube)
    models = ExportedModelSet(tmp_path, bands=BANDS, normalisation="robust", name="robust")
    scores = []
    for budget_mb in (512, 0.02):
        output = str(tmp_path / f"scores{budget_mb}.tif")
        detect_fers(source, output, models.spectral_path, FersOptions(memory_budget_mb=budget_mb))
        scores.append(band_values(output)[0][0])
    np.testing.assert_allclose(scores[1], scores[0], rtol=1e-5)
