"""The pooled selection signal: equal weight to both folders, paired draws only."""
import json

import numpy as np
import pytest

from training import selection


def write(path, auc, hosts):
    path.write_text(json.dumps({"auc": {"fers": list(auc)}, "hosts": hosts}))
    return str(path)


def test_pooled_difference_weighs_both_folders_equally(tmp_path, capsys):
    hosts, small = ["a", "b", "a"], ["s", "t", "u", "s", "t", "u"]
    base = [write(tmp_path / "b1.json", [0.9, 0.8, 0.7], hosts),
            write(tmp_path / "b2.json", [0.5] * 6, small)]
    other = [write(tmp_path / "o1.json", [0.91, 0.82, 0.73], hosts),
             write(tmp_path / "o2.json", [0.6, 0.5, 0.6, 0.5, 0.6, 0.5], small)]
    folders = [selection.read_draws(path) for path in other]
    assert selection.pooled_auc(folders) == pytest.approx((0.82 + 0.55) / 2)
    mean, half = selection.pooled_difference(folders, [selection.read_draws(path) for path in base])
    assert mean == pytest.approx((0.02 + 0.05) / 2)
    halves = [1.96 * np.std([0.01, 0.02, 0.03], ddof=1) / np.sqrt(3),
              1.96 * np.std([0.1, 0, 0.1, 0, 0.1, 0], ddof=1) / np.sqrt(6)]
    assert half == pytest.approx(np.hypot(*halves) / 2)
    assert selection.main(base + other) == 0
    assert "+0.0350" in capsys.readouterr().out


def test_sets_scored_on_different_draws_are_refused(tmp_path):
    one = selection.read_draws(write(tmp_path / "1.json", [0.9, 0.8], ["a", "b"]))
    two = selection.read_draws(write(tmp_path / "2.json", [0.9, 0.8], ["b", "a"]))
    with pytest.raises(ValueError, match="same draws"):
        selection.pooled_difference([one], [two])
