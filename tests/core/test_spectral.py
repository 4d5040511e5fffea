"""Band modes and normalisation shared by training and the plugin; the ONNX metadata contract."""
import numpy as np
import pytest

from fers_qgis.core.errors import InputError
from fers_qgis.core.model_format import ModelMetadata
from fers_qgis.core.spectral import MinMaxNormaliser, band_matrix, to_model_bands


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


@pytest.mark.parametrize("props, message", [
    ({}, "not a FERS model"),
    ({"fers_format_version": "99"}, "format 99"),
    ({"fers_format_version": "1", "fers_branch": "spectral"}, "incomplete"),
    (metadata(band_mode="stretch").to_metadata_props(), "band mode"),
    (metadata(branch="spatial", tile_size=0).to_metadata_props(), "tile size"),
])
def test_bad_metadata_is_refused_with_a_reason(props, message):
    with pytest.raises(InputError, match=message):
        ModelMetadata.from_metadata_props(props, source="x.onnx")
