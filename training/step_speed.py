"""Seconds per training step, as a run would take them: ``python -m training.step_speed --data DIR``.

Builds the trainer of each (stage, bands) asked for on the real background scenes, takes a few warm-up steps
(they include torch.compile's compilation when it is on) and reports the median of the timed steps. The
figures in docs/RESULTS.md ("Training speed") come from here.
"""
import argparse
import statistics
import sys
import tempfile
import time

import numpy as np

from .train import COMPILE_CHOICES, STAGES, TrainConfig, Trainer


def seconds_per_step(stage: str, bands: int, band_mode: str, data: str, compile_mode: str, batch: int = 16,
                     warmup: int = 2, steps: int = 5) -> float:
    """Median seconds of ``steps`` optimiser steps after ``warmup`` untimed ones."""
    with tempfile.TemporaryDirectory(prefix="fers-speed-") as out:
        config = TrainConfig(stage=stage, bands=bands, band_mode=band_mode, data=data, out=out, batch=batch,
                             compile=compile_mode, normalisation="robust", validation_count=0)
        trainer = Trainer(config)
        trainer.set_train_mode(True)
        rng = np.random.default_rng(0)
        times = []
        for step in range(warmup + steps):
            started = time.perf_counter()
            trainer.step(rng)
            if step >= warmup:
                times.append(time.perf_counter() - started)
        return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder of background scenes")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--bands", nargs="+", type=int, default=[50, 200])
    parser.add_argument("--band-mode", default="resample")
    parser.add_argument("--compile", nargs="+", choices=COMPILE_CHOICES[1:], default=["off", "on"])
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args(argv)
    for stage in args.stages:
        for bands in args.bands:
            for mode in args.compile:
                seconds = seconds_per_step(stage, bands, args.band_mode, args.data, mode, args.batch)
                print(f"{stage:<8} B={bands:<4} compile {mode:<3} batch {args.batch}: {seconds:.2f} s/step",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
