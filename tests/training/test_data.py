"""The background tile sampler on small scenes written by the tests."""
import logging

import numpy as np
import pytest

from tests.helpers import set_wavelengths, write_raster
from training import data

SENTINEL = 1.0e6


@pytest.fixture
def scenes_folder(tmp_path):
    """Two 20-band scenes (one with a labelled anomaly carrying a huge value) and one 8-band scene."""
    rng = np.random.default_rng(0)
    cube = rng.uniform(100, 200, size=(20, 50, 60)).astype(np.float32)
    cube[:, 30, 40] = SENTINEL
    write_raster(tmp_path / "labelled.tif", cube)
    labels = np.zeros((50, 60), dtype=np.uint8)
    labels[30, 40] = 1
    write_raster(tmp_path / "labelled_gt.tif", labels)
    write_raster(tmp_path / "plain.tif", rng.uniform(0, 50, size=(20, 40, 40)).astype(np.float32))
    write_raster(tmp_path / "narrow.tif", rng.uniform(0, 50, size=(8, 40, 40)).astype(np.float32))
    return tmp_path


def test_dilate_square_margin():
    mask = np.zeros((12, 12), dtype=bool)
    mask[5, 6] = True
    grown = data.dilate(mask, 2)
    assert grown.sum() == 25 and grown[3:8, 4:9].all()


def test_clean_positions_match_brute_force():
    rng = np.random.default_rng(1)
    excluded = rng.random((20, 23)) < 0.01
    positions = {tuple(p) for p in data.clean_positions(excluded, 8)}
    expected = {(r, c) for r in range(13) for c in range(16) if not excluded[r:r + 8, c:c + 8].any()}
    assert positions == expected
    assert len(data.clean_positions(excluded, 30)) == 0


def test_first_mode_skips_scenes_with_too_few_bands(scenes_folder, caplog):
    with caplog.at_level(logging.WARNING):
        scenes = data.load_scenes(str(scenes_folder), 12, "first")
    assert [scene.name for scene in scenes] == ["labelled", "plain"]
    assert "narrow" in caplog.text
    assert all(scene.cube_bhw.shape[0] == 12 for scene in scenes)
    resampled = data.load_scenes(str(scenes_folder), 12, "resample")
    assert [scene.name for scene in resampled] == ["labelled", "narrow", "plain"]


def test_exclusion_mask_has_margin(scenes_folder):
    scene = data.load_scene(str(scenes_folder), "labelled", 20, "first", margin=4)
    assert scene.excluded_hw.sum() == 81 and scene.excluded_hw[26:35, 36:45].all()


def test_tiles_avoid_anomalies_and_are_normalised(scenes_folder):
    scenes = data.load_scenes(str(scenes_folder), 20, "first")
    sampler = data.TileSampler(scenes, tile_size=16)
    tiles = sampler.batch(64, np.random.default_rng(0))
    assert tiles.shape == (64, 20, 16, 16) and tiles.dtype == np.float32
    np.testing.assert_allclose(tiles.min(axis=(1, 2, 3)), -0.1, atol=1e-6)
    np.testing.assert_allclose(tiles.max(axis=(1, 2, 3)), 0.1, atol=1e-6)
    raw = [sampler.crop(np.random.default_rng(seed)) for seed in range(200)]
    assert max(tile.max() for tile in raw) < SENTINEL
    again = sampler.batch(64, np.random.default_rng(0))
    np.testing.assert_array_equal(tiles, again)


def test_robust_tiles_clip_saturated_pixels_that_minmax_tiles_are_squeezed_by():
    tile = np.random.default_rng(2).uniform(100, 200, size=(20, 16, 16)).astype(np.float32)
    tile[:, 3, 4] = 65535
    robust = data.normalise_tile(tile, "robust")
    assert robust[:, 3, 4].max() == pytest.approx(0.1) and robust.min() == pytest.approx(-0.1)
    assert np.ptp(np.delete(robust.reshape(20, -1), 3 * 16 + 4, axis=1)) > 0.19  # the rest keeps the full range
    assert np.ptp(np.delete(data.normalise_tile(tile).reshape(20, -1), 3 * 16 + 4, axis=1)) < 0.01


def test_training_wavelengths_are_recorded_only_for_one_band_set(scenes_folder):
    set_wavelengths(scenes_folder / "labelled.tif", [400.0 + 10 * band for band in range(20)])
    set_wavelengths(scenes_folder / "plain.tif", [400.5 + 10 * band for band in range(20)])  # same sensor
    scenes = data.load_scenes(str(scenes_folder), 12, "first")
    np.testing.assert_allclose(data.training_wavelengths(scenes), [400.25 + 10 * band for band in range(12)])
    set_wavelengths(scenes_folder / "plain.tif", [450.0 + 10 * band for band in range(20)])  # another band set
    assert data.training_wavelengths(data.load_scenes(str(scenes_folder), 12, "first")) == []
    unknown = data.load_scenes(str(scenes_folder), 8, "first")  # "narrow" has no wavelengths
    assert data.training_wavelengths(unknown) == []


def test_augmentation_is_a_dihedral_transform():
    tile = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    seen = set()
    for seed in range(60):
        out = data.augment(tile, np.random.default_rng(seed))
        assert sorted(out[0].ravel()) == sorted(tile[0].ravel())
        np.testing.assert_array_equal(out[1] - out[0], 16)  # bands move together
        seen.add(out[0].tobytes())
    assert len(seen) == 8


def test_validation_split_and_set(scenes_folder):
    scenes = data.load_scenes(str(scenes_folder), 20, "first")
    training, validation = data.split_scenes(scenes, ["plain"])
    assert [s.name for s in training] == ["labelled"] and [s.name for s in validation] == ["plain"]
    training, validation = data.split_scenes(scenes, validation_count=5, seed=0)
    assert len(training) == 1 and len(validation) == 1
    with pytest.raises(ValueError):
        data.split_scenes(scenes, ["missing"])
    sampler = data.TileSampler(validation, tile_size=32)
    first = sampler.validation_set(4, seed=7)
    second = sampler.validation_set(4, seed=7)
    np.testing.assert_array_equal(first.pasted, second.pasted)
    assert first.labels.shape == (4, 1, 32, 32) and first.labels.sum(axis=(1, 2, 3)).min() > 0
    changed = np.any(first.pasted != first.clean, axis=1, keepdims=True)
    assert np.all(changed <= (first.labels == 1))
