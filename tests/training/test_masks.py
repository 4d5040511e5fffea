"""AETNet-style random masks and pastes."""
from collections import deque

import numpy as np
import pytest

from training import masks


def components(target_hw: np.ndarray) -> list:
    """4-connected components of a boolean image, as lists of (row, column)."""
    seen = np.zeros_like(target_hw, dtype=bool)
    found = []
    for start in zip(*np.nonzero(target_hw)):
        if seen[start]:
            continue
        queue, component = deque([start]), []
        seen[start] = True
        while queue:
            row, column = queue.popleft()
            component.append((row, column))
            for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                r, c = row + dy, column + dx
                if 0 <= r < target_hw.shape[0] and 0 <= c < target_hw.shape[1] and target_hw[r, c] and not seen[r, c]:
                    seen[r, c] = True
                    queue.append((r, c))
        found.append(component)
    return found


@pytest.mark.parametrize("area", [3, 7, 20])
def test_blob_has_exact_area_and_is_connected(area):
    rng = np.random.default_rng(area)
    for _ in range(20):
        blob = masks.grow_blob(area, rng)
        assert blob.shape == (19, 19) and blob.sum() == area and blob[9, 9]
        assert len(components(blob)) == 1


def test_mask_is_reproducible_and_bounded():
    first = masks.random_mask(np.random.default_rng(5))
    second = masks.random_mask(np.random.default_rng(5))
    np.testing.assert_array_equal(first, second)
    assert first.dtype == np.uint8 and set(np.unique(first)) <= {0, 1}
    sizes, counts = [], []
    for seed in range(100):
        target = masks.random_mask(np.random.default_rng(seed)) == 0
        parts = components(target)
        assert 1 <= len(parts) <= 32
        assert 1 <= target.sum() <= 32 * 20
        counts.append(len(parts))
        sizes += [len(part) for part in parts]
    assert max(sizes) <= 32 * 20 and np.mean(counts) > 5  # T ~ U{1..32}; overlaps merge some blobs
    assert np.mean(sizes) > 3


def test_one_target_per_cell_limit_on_small_tiles():
    target = masks.random_mask(np.random.default_rng(0), size=16) == 0
    assert target.shape == (16, 16) and target.any()


def test_paste_kinds():
    rng = np.random.default_rng(0)
    tile = rng.uniform(-0.1, 0.1, size=(12, 64, 64)).astype(np.float32)
    mask = masks.random_mask(rng)
    target = mask == 0
    unchanged, labels = masks.paste(tile, mask, "no", rng)
    np.testing.assert_array_equal(unchanged, tile)
    assert labels.sum() == 0
    for kind in ("zero", "random", "sin"):
        pasted, labels = masks.paste(tile, mask, kind, rng)
        np.testing.assert_array_equal(labels, target.astype(np.uint8))
        np.testing.assert_array_equal(pasted[:, ~target], tile[:, ~target])
        assert np.all(np.abs(pasted[:, target]) <= 0.1 + 1e-7)
    zero, _ = masks.paste(tile, mask, "zero", rng)
    assert np.all(zero[:, target] == 0)
    sine, _ = masks.paste(tile, mask, "sin", rng)
    spectra = sine[:, target]
    assert np.allclose(spectra, spectra[:, :1])  # one spectrum for every pasted pixel
    phase = np.arcsin(np.clip(spectra[0, 0] / 0.1, -1, 1))
    assert spectra[0, 0] >= -1e-7 and spectra[-1, 0] == pytest.approx(spectra[0, 0], abs=1e-6)
    expected = 0.1 * np.sin(np.array([phase, np.pi - phase])[:, None] + 2 * np.pi * np.linspace(0, 1, 12))
    assert min(np.abs(expected - spectra[:, 0]).max(axis=1)) < 1e-5
    with pytest.raises(ValueError):
        masks.paste(tile, mask, "image", rng)


def test_paste_batch_labels_match_changes():
    rng = np.random.default_rng(3)
    tiles = rng.uniform(-0.1, 0.1, size=(6, 5, 32, 32)).astype(np.float32)
    pasted, labels = masks.paste_batch(tiles, rng, ("zero",))
    assert pasted.shape == tiles.shape and labels.shape == (6, 1, 32, 32) and labels.dtype == np.float32
    np.testing.assert_array_equal(pasted == 0, np.broadcast_to(labels == 1, pasted.shape))


def test_max_targets_limits_blob_count():
    for seed in range(30):
        target = masks.random_mask(np.random.default_rng(seed), max_targets=2) == 0
        assert 1 <= len(components(target)) <= 2 and target.sum() <= 40
