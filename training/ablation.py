"""Train, export and evaluate FERS variants over several seeds, and tabulate them (docs/RESULTS.md's source).

    python -m training.ablation --data ../shared/data/train --scenes ../shared/data/eval --out runs/ablation \
        [--bands 50] [--band-mode first] [--seeds 0 1 2] [--variants untrained random-teacher trained-teacher]

Variants (same architecture, same seeds, fixed default schedules, no selection on the evaluation scenes):
  untrained        both branches as initialised (``--epochs 0``): what the architecture gives without training;
  random-teacher   untrained spectral branch, student trained (stage 2 only);
  trained-teacher  stage 1 then stage 2, the full method.
Runs already finished are reused, so an interrupted ablation continues where it stopped. Every run is evaluated
with the ``fers``, ``fers-spectral`` and ``fers-spatial`` detectors; the table gives mean and std over seeds,
with and without muufl_targets (whose targets are a few pixels wide, which no background model can help with).
"""
import argparse
import json
import os
import subprocess
import sys
from typing import Dict, List

import numpy as np

from .train import STUDENT_FILE

VARIANTS = ("untrained", "random-teacher", "trained-teacher")
FERS_DETECTORS = ("fers", "fers-spectral", "fers-spatial")
HARD_SCENE = "muufl_targets"


def _python_module(module: str, *args: str) -> None:
    subprocess.run([sys.executable, "-m", module, *args], check=True)


def _train(stage: str, out: str, common: List[str], *extra: str) -> None:
    if os.path.exists(os.path.join(out, STUDENT_FILE if stage == "student" else "enhancer.pt")):
        return  # finished earlier
    _python_module("training.train", "--stage", stage, "--out", out, *common, *extra)


def run_variant(variant: str, seed: int, args) -> Dict[str, dict]:
    """Train (unless done), export and evaluate one variant at one seed; returns {detector: evaluation JSON}."""
    name = f"{variant}_b{args.bands}_{args.band_mode}_s{seed}"
    folder = os.path.join(args.out, name)
    common = ["--bands", str(args.bands), "--band-mode", args.band_mode, "--data", args.data,
              "--seed", str(seed), "--device", args.device]
    student = os.path.join(folder, "student")
    if variant == "trained-teacher":
        teacher = os.path.join(folder, "teacher")
        _train("teacher", teacher, common)
        _train("student", student, common, "--teacher", teacher)
    else:
        _train("student", student, common, "--teacher", "random",
               *(["--epochs", "0"] if variant == "untrained" else []))
    models = os.path.join(folder, "models")
    model = os.path.join(models, f"{name}.spectral.onnx")
    if not os.path.exists(model):
        _python_module("training.export", student, "--out", models, "--name", name)
    results = {}
    for detector in FERS_DETECTORS:
        path = os.path.join(folder, f"eval_{detector}.json")
        if not os.path.exists(path):
            _python_module("training.evaluate", "--scenes", args.scenes, "--detector", detector, "--model", model,
                           "--json", path)
        with open(path) as handle:
            results[detector] = json.load(handle)
    return results


def summarise(results: Dict[str, List[Dict[str, dict]]], rx: dict) -> str:
    """Markdown table: per variant and detector, mean +- std over seeds of the mean AUC (all scenes and without
    the hard scene), the per-scene means, and the worst shortfall against RX."""
    scenes = [scene["name"] for scene in rx["scenes"]]
    rx_auc = {scene["name"]: scene["auc"] for scene in rx["scenes"]}
    header = ["variant", "detector", "mean (7)", f"mean (no {HARD_SCENE})"] + scenes + ["worst vs RX"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def row(label, detector, per_seed):
        aucs = np.array([[{s["name"]: s["auc"] for s in run["scenes"]}[name] for name in scenes] for run in per_seed])
        keep = [index for index, name in enumerate(scenes) if name != HARD_SCENE]
        means, means_easy = aucs.mean(axis=1), aucs[:, keep].mean(axis=1)
        shortfall = min(aucs.mean(axis=0)[index] - rx_auc[name] for index, name in enumerate(scenes))
        cells = [label, detector, f"{means.mean():.4f} ± {means.std():.4f}",
                 f"{means_easy.mean():.4f} ± {means_easy.std():.4f}"]
        cells += [f"{value:.4f}" for value in aucs.mean(axis=0)] + [f"{shortfall:+.4f}"]
        lines.append("| " + " | ".join(cells) + " |")

    row("—", "rx (all bands)", [rx])
    for variant, per_seed in results.items():
        for detector in FERS_DETECTORS:
            row(f"{variant} ({len(per_seed)} seeds)", detector, [run[detector] for run in per_seed])
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="background training scenes")
    parser.add_argument("--scenes", required=True, help="evaluation scenes (NAME.tif + NAME_gt.tif)")
    parser.add_argument("--out", default="runs/ablation")
    parser.add_argument("--bands", type=int, default=50)
    parser.add_argument("--band-mode", default="first")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    rx_path = os.path.join(args.out, "eval_rx.json")
    if not os.path.exists(rx_path):
        _python_module("training.evaluate", "--scenes", args.scenes, "--detector", "rx", "--json", rx_path)
    with open(rx_path) as handle:
        rx = json.load(handle)
    results = {variant: [run_variant(variant, seed, args) for seed in args.seeds] for variant in args.variants}
    table = summarise(results, rx)
    with open(os.path.join(args.out, f"table_b{args.bands}_{args.band_mode}.md"), "w") as handle:
        handle.write(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
