"""The ablation table: means and spreads over seeds, with and without the hard scene, and the shortfall vs RX."""
import pytest

from training.ablation import HARD_SCENE, summarise


def evaluation(aucs):
    return {"scenes": [{"name": name, "auc": auc} for name, auc in aucs.items()]}


def test_summary_gives_mean_and_std_over_seeds_and_the_worst_scene_against_rx():
    rx = evaluation({"a": 0.90, "b": 0.80, HARD_SCENE: 0.60})
    seeds = [{"fers": evaluation({"a": 0.95, "b": 0.78, HARD_SCENE: 0.70}),
              "fers-spectral": evaluation({"a": 0.9, "b": 0.8, HARD_SCENE: 0.6}),
              "fers-spatial": evaluation({"a": 0.9, "b": 0.8, HARD_SCENE: 0.6})},
             {"fers": evaluation({"a": 0.97, "b": 0.80, HARD_SCENE: 0.70}),
              "fers-spectral": evaluation({"a": 0.9, "b": 0.8, HARD_SCENE: 0.6}),
              "fers-spatial": evaluation({"a": 0.9, "b": 0.8, HARD_SCENE: 0.6})}]
    table = summarise({"trained": seeds}, rx)
    fers_row = next(line for line in table.splitlines() if "| fers |" in line)
    cells = [cell.strip() for cell in fers_row.strip("|").split("|")]
    means = [(0.95 + 0.78 + 0.70) / 3, (0.97 + 0.80 + 0.70) / 3]
    assert cells[2] == f"{sum(means) / 2:.4f} ± {abs(means[0] - means[1]) / 2:.4f}"
    assert cells[3] == f"{(0.95 + 0.78 + 0.97 + 0.80) / 4:.4f} ± {0.01:.4f}"  # seed means 0.865 and 0.885
    assert cells[-1] == "-0.0100"  # scene b: 0.79 on average against RX's 0.80
    assert table.splitlines()[2].startswith("| — | rx (all bands) | 0.7667 ± 0.0000")
    assert pytest.approx(float(cells[4])) == 0.96
