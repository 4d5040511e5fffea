"""The FERS command line: ``python -m fers_qgis.cli detect|import ...`` (the console command ``fers`` in the venv).

``fers detect --detector rx|rx-local|fers|... INPUT... --out DIR`` scores each input raster with the plugin's core
and options; ``fers import PRODUCT... --out DIR`` imports EMIT, EnMAP, PRISMA and AVIRIS products to GeoTIFF.
``--workers N`` (a local Dask cluster) or ``--scheduler ADDRESS`` (a running one) spread the inputs over processes or
machines, one task per input, and ``detect --split`` runs each raster's passes as a task graph over blocks. Without
either, the inputs run one after another in this process. The run ends with a summary table and exits non-zero when
an input failed (one line each); the others still finish.
"""
import argparse
import logging
import os
import re
import sys
import time
from contextlib import contextmanager
from typing import List, Optional, Sequence

from .batch import (PRODUCT_SUFFIXES, DetectionJob, ImportJob, Job, JobResult, expand_inputs, input_stem,
                    output_name, plan_jobs, remove_partial_files, run_here, run_on_cluster)
from ..core import products
from ..core.detection import RxOptions
from ..core.enhancement import FersOptions
from ..core.errors import FersError
from ..core.model_format import FUSIONS
from ..core.progress import Progress

# Command-line detector names and the core options each stands for (the plugin's defaults).
DETECTORS = ("rx", "rx-local", "fers", "fers-local", "fers-spectral", "fers-spatial")
SPLIT_DETECTORS = ("rx", "fers", "fers-spectral", "fers-spatial")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fers", description="Hyperspectral anomaly detection (FERS, RX) from the "
                                     "command line, on one machine or a Dask cluster.")
    commands = parser.add_subparsers(dest="command", required=True)
    detect = commands.add_parser("detect", help="score rasters with an anomaly detector",
                                 description="Score every input raster; outputs are OUT/NAME_DETECTOR_anomalies.tif.")
    add_common_arguments(detect, "raster files, folders (their .tif/.vrt/.img/ENVI rasters and NetCDF/HDF5 "
                                 "products, imported on the fly) or glob patterns; GDAL paths such as "
                                 "/vsis3/bucket/scene.tif or /vsicurl/https://... pass through")
    detect.add_argument("--detector", choices=DETECTORS, default="fers",
                        help="rx: global RX; rx-local: RX against a window around each pixel; fers: RX on the "
                             "FERS-enhanced cube (default); fers-local: local RX on it; fers-spectral / "
                             "fers-spatial: one branch only (for comparison)")
    detect.add_argument("--bands", nargs="+", metavar="SELECTION",
                        help="RX: the bands to use, as in the plugin's Bands field: numbers and ranges (3 7 9, "
                             "1-50, 1-10,20-30) or wavelength ranges ('400-1000 nm', '0.4-1.0 um'); default all")
    detect.add_argument("--inner-window", type=int, default=3, help="local detectors: inner (guard) window, pixels")
    detect.add_argument("--outer-window", type=int, default=15, help="local detectors: outer window, pixels")
    detect.add_argument("--model", metavar="PATH.spectral.onnx",
                        help="FERS: a model set's spectral file (default: the shipped model that reads the most of "
                             "each raster's bands, as the plugin's Automatic choice)")
    detect.add_argument("--fusion", choices=("model",) + FUSIONS, default="model",
                        help="FERS: the model's own fusion rule (default), or force one: sum, product (the two "
                             "branches' RX maps multiplied) or product-rx (also times plain RX on the model bands)")
    detect.add_argument("--scale", action="store_true", help="FERS: scale scores to 0-1")
    detect.add_argument("--gpu", action="store_true", help="FERS: run the models with CUDA when available")
    detect.add_argument("--mask", metavar="PATH",
                        help="mask raster on the inputs' grid: pixels where it is 0 are ignored")
    detect.add_argument("--memory-mb", type=int, help="memory budget of each job (default: the plugin's, "
                                                      "256 for RX, 512 for FERS)")
    detect.add_argument("--split", action="store_true",
                        help="run each raster's passes as a task graph over blocks (for rasters larger than one "
                             "machine handles in time); needs --workers or --scheduler; global detectors only")
    detect.add_argument("--tasks", type=int, metavar="N", help="split mode: tasks per pass (default 4 per worker)")
    importer = commands.add_parser("import", help="import hyperspectral products to GeoTIFF",
                                   description="Import EMIT L2A, EnMAP L2A, PRISMA L2D, AVIRIS-NG / AVIRIS-3 products "
                                               "(and NetCDF/HDF5 cubes) as the plugin's Import algorithm does; "
                                               "outputs are OUT/NAME.tif.")
    add_common_arguments(importer, "product files, folders (their .nc/.he5/.h5/.hdr/METADATA.XML/.zip files) or "
                                   "glob patterns")
    importer.add_argument("--sensor-geometry", action="store_true",
                          help="write EMIT swaths as recorded (every pixel once, no fill, georeferenced by ground "
                               "control points) instead of on their map grid; other products are unchanged")
    return parser


def add_common_arguments(command: argparse.ArgumentParser, inputs_help: str) -> None:
    """Inputs, output folder, where to run, reruns and display: the same for every subcommand."""
    command.add_argument("inputs", nargs="+", metavar="INPUT", help=inputs_help)
    command.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    cluster = command.add_mutually_exclusive_group()
    cluster.add_argument("--workers", type=int, metavar="N", help="start a local Dask cluster of N processes")
    cluster.add_argument("--scheduler", metavar="ADDRESS", help="use a running Dask cluster (tcp://host:8786); "
                         "its workers must import fers_qgis and see the inputs and the output folder")
    command.add_argument("--overwrite", action="store_true", help="redo inputs whose output exists (default: skip)")
    command.add_argument("--quiet", action="store_true", help="no progress bar")


def band_selection(words: Optional[Sequence[str]]) -> Optional[str]:
    """The --bands words as one selection text for ``spectral.parse_band_selection`` (read per raster, which
    knows its wavelengths): numbers given as separate words become a list."""
    if not words:
        return None
    return re.sub(r"(?<=\d)\s+(?=\d)", ",", " ".join(words))


def job_factory(args) -> callable:
    """(input, output) -> DetectionJob with the options the arguments ask for."""
    budget = {"memory_budget_mb": args.memory_mb} if args.memory_mb else {}
    if args.detector in ("rx", "rx-local"):
        options = RxOptions(detector="global" if args.detector == "rx" else "local", inner_window=args.inner_window,
                            outer_window=args.outer_window, bands=band_selection(args.bands), **budget)
    else:
        options = FersOptions(detector=args.detector, fusion=None if args.fusion == "model" else args.fusion,
                              inner_window=args.inner_window, outer_window=args.outer_window,
                              scale_scores=args.scale, use_gpu=args.gpu, **budget)
    return lambda raster, output: DetectionJob(raster, output, options, args.model, args.mask)


class TerminalProgress(Progress):
    """A one-line progress bar on the terminal for the job running in this process."""

    def __init__(self, label: str, stream=sys.stderr, width: int = 30):
        self._label = label[-40:]
        self._stream = stream
        self._width = width

    def set_fraction(self, fraction: float) -> None:
        filled = int(round(fraction * self._width))
        self._stream.write(f"\r{self._label} [{'#' * filled}{'.' * (self._width - filled)}] {fraction:4.0%}")
        if fraction >= 1.0:
            self._stream.write("\n")
        self._stream.flush()


@contextmanager
def dask_client(workers: Optional[int], scheduler: Optional[str]):
    """A Dask client of a running cluster, or of a local cluster of ``workers`` single-threaded processes."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as error:
        raise SystemExit("--workers and --scheduler need Dask: pip install dask distributed "
                         "(see requirements.txt for the tested versions).") from error
    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


def run_split(client, jobs: Sequence[Job], tasks: Optional[int], show_progress: bool) -> List[JobResult]:
    """Each raster in turn as a task graph over the whole cluster (``tasks`` per pass; default: a few per worker)."""
    from .split import split_job
    results = []
    for job in jobs:
        started = time.perf_counter()
        try:
            summary = split_job(client, job, tasks, show_progress)
        except Exception as error:  # FersError, or a task that kept failing: reported, the next raster goes on
            message = str(error) if isinstance(error, FersError) else f"{type(error).__name__}: {error}"
            results.append(JobResult(job.input_path, job.output_path, "failed", time.perf_counter() - started,
                                     message=message))
            continue
        results.append(JobResult(job.input_path, job.output_path, "done", summary.seconds, summary.valid_pixels))
    return results


def summary_table(results: Sequence[JobResult]) -> str:
    """One row per input: name, status, seconds, valid pixels, output."""
    rows = [("input", "status", "seconds", "valid pixels", "output")] + [
        (os.path.basename(result.input_path) or result.input_path, result.status,
         f"{result.seconds:.1f}" if result.status == "done" else "", str(result.valid_pixels or ""),
         result.output_path if result.status != "failed" else "") for result in results]
    widths = [max(len(row[column]) for row in rows) for column in range(5)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    counts = {status: sum(result.status == status for result in results) for status in ("done", "skipped", "failed")}
    lines.append(", ".join(f"{count} {status}" for status, count in counts.items()))
    return "\n".join(lines)


def detect(args) -> int:
    if args.split and not (args.workers or args.scheduler):
        raise SystemExit("--split runs on a Dask cluster: add --workers N or --scheduler ADDRESS.")
    if args.split and args.detector not in SPLIT_DETECTORS:
        raise SystemExit(f"--split runs the global detectors ({', '.join(SPLIT_DETECTORS)}); {args.detector} takes "
                         f"its background from a window around each pixel: run it without --split.")
    rasters, failures = expand_inputs(args.inputs)
    return run_jobs(args, rasters, failures, lambda raster: output_name(raster, args.detector), job_factory(args))


def import_products(args) -> int:
    found, failures = expand_inputs(args.inputs, PRODUCT_SUFFIXES)
    geometry = products.SENSOR_GEOMETRY if args.sensor_geometry else products.MAP_GRID
    return run_jobs(args, found, failures, lambda product: f"{input_stem(product)}.tif",
                    lambda product, output: ImportJob(product, output, geometry))


def run_jobs(args, inputs: Sequence[str], failures: List[JobResult], name_for, make_job) -> int:
    """Plan, run (here, on a cluster, or split), clean up after killed writers, and report."""
    if args.workers is not None and args.workers < 1:
        raise SystemExit("--workers must be at least 1.")
    os.makedirs(args.out, exist_ok=True)
    jobs, results = plan_jobs(inputs, args.out, name_for, make_job, args.overwrite)
    show_progress = not args.quiet and sys.stderr.isatty()
    for job in jobs:
        remove_partial_files(job.output_path)
    if not (args.workers or args.scheduler):
        ran = run_here(jobs, lambda job: TerminalProgress(os.path.basename(job.input_path)) if show_progress
                       else Progress())
    else:
        with dask_client(args.workers, args.scheduler) as client:
            if getattr(args, "split", False):
                ran = run_split(client, jobs, args.tasks, show_progress)
            else:
                ran = run_on_cluster(client, jobs, show_progress)
    for job in jobs:
        remove_partial_files(job.output_path)  # left by a writer killed with its worker; the retry finished
    results = sorted(failures + results + ran, key=lambda result: result.input_path)
    print(summary_table(results))
    failed = [result for result in results if result.status == "failed"]
    for result in failed:
        print(f"failed: {result.input_path}: {result.message}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return detect(args) if args.command == "detect" else import_products(args)
