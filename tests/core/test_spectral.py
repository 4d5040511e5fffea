"""Band modes and normalisation shared by training and the plugin; the ONNX metadata contract."""
import numpy as np
import pytest

from fers_qgis.core.errors import InputError
from fers_qgis.core.model_format import ModelMetadata
from fers_qgis.core.spectral import (SAMPLE_VALUES, MinMaxNormaliser, SceneRange, band_matrix, parse_band_selection,
                                     robust_range, to_model_bands)


def test_first_mode_selects_the_first_bands():
    cube = np.arange(5 * 2 * 3, dtype=float).reshape(5, 2, 3)
    matrix = band_matrix(5, 3, "first")
    np.testing.assert_array_equal(to_model_bands(cube, matrix), cube[:3])


def test_first_mode_with_too_few_bands_names_the_alternatives():
    with pytest.raises(InputError, match="resamples bands.*at most 72 bands"):
        band_matrix(72, 100, "first")


def test_resample_by_position_interpolates_linearly_over_the_full_range():
    cube = np.arange(11, dtype=float)[:, None, None] * np.ones((1, 2, 2))  # band value = band index
    resampled = to_model_bands(cube, band_matrix(11, 21, "resample"))
    np.testing.assert_allclose(resampled[:, 0, 0], np.linspace(0, 10, 21))
    down = to_model_bands(cube, band_matrix(11, 4, "resample"))
    np.testing.assert_allclose(down[:, 1, 1], np.linspace(0, 10, 4))


def test_resample_uses_wavelengths_when_every_band_has_one():
    wavelengths = [400.0, 500.0, 900.0]  # uneven spacing
    cube = np.array(wavelengths)[:, None, None] * np.ones((1, 1, 1))
    resampled = to_model_bands(cube, band_matrix(3, 5, "resample", wavelengths))
    np.testing.assert_allclose(resampled[:, 0, 0], np.linspace(400, 900, 5))
    by_position = to_model_bands(cube, band_matrix(3, 5, "resample", [400.0, None, 900.0]))
    np.testing.assert_allclose(by_position[:, 0, 0], [400, 450, 500, 700, 900])


def test_resample_spreads_over_the_good_bands_only():
    wavelengths = [400.0 + 10 * band for band in range(12)]  # 400-510 nm
    usable = [False] + [True] * 5 + [False, False] + [True] * 3 + [False]  # bad: 400, 460, 470, 510 nm
    matrix = band_matrix(12, 6, "resample", wavelengths, usable=usable)
    assert not matrix[:, ~np.array(usable)].any()  # no model band reads a bad band
    cube = np.array(wavelengths)[:, None, None] * np.ones((1, 1, 1))
    # 410-500 nm, the good range; 464 nm lies in the gap and is interpolated between 450 and 480 nm.
    np.testing.assert_allclose(to_model_bands(cube, matrix)[:, 0, 0], np.linspace(410, 500, 6))
    by_number = band_matrix(12, 3, "resample", usable=usable)
    np.testing.assert_allclose(by_number @ np.arange(12.0), [1, 5.5, 10])
    with pytest.raises(InputError, match="at least 2 good bands"):
        band_matrix(12, 3, "resample", usable=[True] + [False] * 11)


def test_resample_rows_are_convex_weights():
    matrix = band_matrix(37, 50, "resample")
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    assert matrix.min() >= 0


def test_minmax_normaliser_maps_to_the_scaled_range_and_merges_blocks():
    values = np.array([[3.0, 7.0], [5.0, 11.0]])
    whole = MinMaxNormaliser.fit(values)
    merged = MinMaxNormaliser.fit(values[0]).merged(MinMaxNormaliser.fit(values[1]))
    assert merged == whole
    np.testing.assert_allclose(whole.apply(np.array([3.0, 7.0, 11.0])), [-0.1, 0.0, 0.1], atol=1e-12)
    assert np.all(np.isfinite(MinMaxNormaliser.fit(np.ones(4)).apply(np.ones(4))))


def test_spectrometer_overlaps_keep_the_sensor_order():
    wavelengths = [640.0, 650.0, 660.0, 667.5, 655.5, 665.0, 675.0]  # AVIRIS bands 30-36: two spectrometers
    np.testing.assert_array_equal(band_matrix(7, 5, "first", wavelengths), np.eye(7)[:5])


def test_descending_wavelengths_feed_first_bands_in_wavelength_order():
    wavelengths = [900.0, 800.0, 700.0, 600.0, 500.0]  # PRISMA's VNIR cube lists its bands from long to short
    cube = np.array(wavelengths)[:, None, None] * np.ones((1, 2, 2))
    np.testing.assert_array_equal(to_model_bands(cube, band_matrix(5, 3, "first", wavelengths))[:, 0, 0],
                                  [500, 600, 700])
    resampled = to_model_bands(cube, band_matrix(5, 3, "resample", wavelengths))
    np.testing.assert_allclose(resampled[:, 0, 0], [500, 700, 900])


def test_model_wavelengths_select_matching_bands_and_interpolate_others():
    source = [400.0 + 10 * band for band in range(30)]
    cube = np.array(source)[:, None, None] * np.ones((1, 2, 2))
    same_sensor = band_matrix(30, 4, "first", source, model_wavelengths_nm=source[3:7])
    np.testing.assert_array_equal(same_sensor, np.eye(30)[3:7])  # the same band set: a pure selection
    other = to_model_bands(cube, band_matrix(30, 3, "first", source, model_wavelengths_nm=[405.0, 512.5, 690.0]))
    np.testing.assert_allclose(other[:, 0, 0], [405.0, 512.5, 690.0])
    # Without raster wavelengths the band mode decides, as before.
    np.testing.assert_array_equal(band_matrix(30, 3, "first", None, model_wavelengths_nm=[700, 800, 900]),
                                  np.eye(30)[:3])


def test_a_raster_that_misses_the_model_wavelengths_is_refused():
    with pytest.raises(InputError, match="reads 400-1000 nm.*cover 1200-2400 nm"):
        band_matrix(13, 61, "first", np.linspace(1200, 2400, 13), model_wavelengths_nm=np.linspace(400, 1000, 61))


def test_robust_range_ignores_a_few_saturated_pixels_and_keeps_clean_ranges_exact():
    rng = np.random.default_rng(0)
    clean = rng.gamma(4.0, 500.0, size=(50, 10000))
    assert robust_range(clean) == (clean.min(), clean.max())
    saturated = clean.copy()
    saturated[:, :6] = 65535  # six pixels, every band
    assert robust_range(saturated) == (saturated[:, 6:].min(), saturated[:, 6:].max())
    normaliser = MinMaxNormaliser.fit(saturated, method="robust")
    assert normaliser.clip and normaliser.apply(np.array([65535.0]))[0] == pytest.approx(0.1)


def test_scene_range_samples_big_scenes_in_bounded_memory_and_small_ones_exactly():
    rng = np.random.default_rng(1)
    small, other = SceneRange(), SceneRange()
    values = rng.normal(size=(4, 100))
    other.add(values[:, 30:], np.arange(30, 100))
    small.add(values[:, :30], np.arange(30))
    small.merge(other)  # blocks merge in any order, as split runs merge them
    assert small.normaliser("robust") == MinMaxNormaliser.fit(values, method="robust")
    assert small.normaliser("minmax") == MinMaxNormaliser.fit(values)
    big = SceneRange()
    for block in range(20):
        big.add(rng.normal(size=(2, SAMPLE_VALUES // 2)), np.arange(SAMPLE_VALUES // 2) + block * SAMPLE_VALUES // 2)
    assert big.sampled_values <= SAMPLE_VALUES
    assert big.merge(SceneRange()).stride == big.stride and big.sampled_values <= SAMPLE_VALUES


def sampled_range(values_bn: np.ndarray, cuts, order) -> SceneRange:
    """The range of a scene given block by block: cut at ``cuts``, blocks merged in ``order``."""
    edges = [0, *cuts, values_bn.shape[1]]
    parts = []
    for start, stop in zip(edges, edges[1:]):
        part = SceneRange()
        part.add(values_bn[:, start:stop], np.arange(start, stop))
        parts.append(part)
    merged = parts[order[0]]
    for index in order[1:]:
        merged.merge(parts[index])
    return merged


def test_scene_range_sample_does_not_depend_on_the_blocks_or_their_order():
    """Before, each block kept every k-th of its own pixels, so the robust range (an extreme of the sample) moved
    with the memory budget: on a 400 x 400 x 200 scene from -6.98 to -7.56."""
    values = np.random.default_rng(2).standard_t(3, size=(20, 3 * SAMPLE_VALUES // 20 + 77))
    one = sampled_range(values, [], [0])
    assert one.stride == 4  # the smallest power of two whose sample fits
    for cuts, order in [([1000], [0, 1]), ([1000], [1, 0]), ([5, 70001, 100003], [2, 0, 3, 1])]:
        cut = sampled_range(values, cuts, order)
        assert cut.stride == one.stride
        assert cut.normaliser("robust") == one.normaliser("robust")


@pytest.mark.parametrize("text, expected", [
    ("1-5", (1, 2, 3, 4, 5)), ("1-2, 4-5", (1, 2, 4, 5)), ("5;3", (3, 5)), ("2", (2,)),
    ("400-420 nm", (1, 2, 3)), ("0.43-0.44um", (4, 5)), ("0.40-0.41, 0.44-0.45 µm", (1, 2, 5, 6)),
    ("451 nm", (6,)),
])
def test_band_selections_read_ranges_and_wavelength_ranges(text, expected):
    assert parse_band_selection(text, 8, [400.0 + 10 * band for band in range(8)]) == expected


@pytest.mark.parametrize("text, wavelengths, message", [
    ("1-50", None, "Band numbers 9-50 do not exist: the raster has bands 1 to 8"),
    ("0", None, "Band number 0 does not exist"),
    ("5-2", None, "runs backwards"),
    ("1-4 apples", None, "Cannot read the band selection"),
    ("", None, "empty"),
    ("400-1000 nm", None, "no wavelengths.*band numbers such as 1-50"),
    ("1000-2000 nm", [400.0 + 10 * band for band in range(8)], "No band lies in .*cover 400 to 470 nm"),
    ("400-500 nm, 1-2 um", [400.0 + 10 * band for band in range(8)], "mixes units"),
])
def test_bad_band_selections_say_what_to_type(text, wavelengths, message):
    with pytest.raises(InputError, match=message):
        parse_band_selection(text, 8, wavelengths or [None] * 8)


def metadata(**changes):
    values = dict(branch="spectral", bands=50, band_mode="resample", normalisation_scale=0.1, tile_size=0, halo=4,
                  fusion="product", companion="m.spatial.onnx", training={"scenes": ["a", "b"], "seed": 1})
    values.update(changes)
    return ModelMetadata(**values)


def test_metadata_round_trips_through_string_props():
    original = metadata()
    props = original.to_metadata_props()
    assert all(isinstance(key, str) and isinstance(value, str) for key, value in props.items())
    assert ModelMetadata.from_metadata_props(props) == original


def test_metadata_records_normalisation_and_training_wavelengths():
    original = metadata(normalisation="robust", wavelengths_nm=tuple(400.0 + 10 * band for band in range(50)))
    assert ModelMetadata.from_metadata_props(original.to_metadata_props()) == original
    older = {key: value for key, value in original.to_metadata_props().items()
             if key not in ("fers_normalisation", "fers_wavelengths_nm")}
    read = ModelMetadata.from_metadata_props(older)  # files written before these fields: exact min-max, no wavelengths
    assert (read.normalisation, read.wavelengths_nm) == ("minmax", ())


@pytest.mark.parametrize("props, message", [
    (metadata(normalisation="zscore").to_metadata_props(), "normalisation 'zscore'"),
    (metadata(wavelengths_nm=(400.0, 500.0)).to_metadata_props(), "2 wavelengths for 50 bands"),
    ({}, "not a FERS model"),
    ({"fers_format_version": "99"}, "format 99"),
    ({"fers_format_version": "1", "fers_branch": "spectral"}, "incomplete"),
    (metadata(band_mode="stretch").to_metadata_props(), "band mode"),
    (metadata(branch="spatial", tile_size=0).to_metadata_props(), "tile size"),
])
def test_bad_metadata_is_refused_with_a_reason(props, message):
    with pytest.raises(InputError, match=message):
        ModelMetadata.from_metadata_props(props, source="x.onnx")


def test_scene_range_holds_no_more_than_its_sample_whatever_the_blocks():
    """Before: halving kept views of every block's full copy alive (3.7 GB for a 3000 x 3000 scene)."""
    import tracemalloc
    tracemalloc.start()
    try:
        scene_range = SceneRange()
        for seed in range(6):
            scene_range.add(np.random.default_rng(seed).normal(size=(50, SAMPLE_VALUES // 20)),
                            np.arange(SAMPLE_VALUES // 20) + seed * SAMPLE_VALUES // 20)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert scene_range.sampled_values <= SAMPLE_VALUES
    assert held <= SAMPLE_VALUES * 8 * 1.1
