"""The pooled selection signal that decides defaults and trained-against-untrained (docs/RESULTS.md).

    python -m training.selection BASE_HOSTS.json BASE_SMALL.json OTHER_HOSTS.json OTHER_SMALL.json ...

Each model set is a pair of ``training.implant_benchmark`` JSON files: the two held-out training hosts
(sandiego_airport_120, salinas_implants; 18 draws) and small/ (other sensors, never trained on; 60 draws). The
held-out hosts alone sit at 0.98 for every set and cannot tell training from none; small/ alone is five tiny
scenes. So both count equally: the pooled AUC is the mean of the two folders' means, and a paired difference is the
mean of the two folders' paired differences, its 95% interval half the root sum of squares of theirs.
"""
import argparse
import json
import sys
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

from training.implant_benchmark import half_width


@dataclass(frozen=True)
class Draws:
    """One folder's per-draw AUCs of one model set, with the draws' hosts (to check that draws are paired)."""

    auc: np.ndarray
    hosts: Tuple[str, ...]


def read_draws(path: str) -> Draws:
    with open(path) as handle:
        result = json.load(handle)
    (auc,) = result["auc"].values()
    return Draws(np.asarray(auc, dtype=float), tuple(result.get("hosts", ())))


def pooled_auc(folders: Sequence[Draws]) -> float:
    return float(np.mean([draws.auc.mean() for draws in folders]))


def pooled_difference(other: Sequence[Draws], base: Sequence[Draws]) -> Tuple[float, float]:
    """Mean paired difference other - base over the folders, and its 95% half-interval."""
    means, halves = [], []
    for this, that in zip(other, base):
        if this.auc.size != that.auc.size or (this.hosts and that.hosts and this.hosts != that.hosts):
            raise ValueError("the two sets were not scored on the same draws")
        difference = this.auc - that.auc
        means.append(difference.mean())
        halves.append(half_width(difference))
    return float(np.mean(means)), float(np.sqrt(np.sum(np.square(halves))) / len(halves))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Pooled selection signal of model sets, paired to the first.")
    parser.add_argument("json", nargs="+", help="pairs: held-out hosts JSON, small/ JSON, per model set")
    args = parser.parse_args(argv)
    if len(args.json) % 2:
        parser.error("give the JSON files in pairs (held-out hosts, small/) per model set")
    sets: List[Tuple[str, List[Draws]]] = [
        (args.json[i], [read_draws(args.json[i]), read_draws(args.json[i + 1])]) for i in range(0, len(args.json), 2)]
    base_name, base = sets[0]
    for name, folders in sets:
        line = (f"{name}: pooled {pooled_auc(folders):.4f} (hosts {folders[0].auc.mean():.4f}, "
                f"small/ {folders[1].auc.mean():.4f})")
        if folders is not base:
            mean, half = pooled_difference(folders, base)
            line += f", minus {base_name}: {mean:+.4f} +- {half:.4f}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
