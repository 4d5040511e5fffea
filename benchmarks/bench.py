"""``make bench``: wall time, throughput and peak memory of our detectors and of Spectral Python's, same rasters.

Synthetic rasters are generated in a temporary folder (never committed). Every measurement runs in a fresh
child process, so its peak resident memory (from ``wait4``) is that job's alone, imports included.

``python -m benchmarks.bench [--cases detectors split] [--sizes 100 1000 3000] [--bands 200]
[--dtypes float32 uint16] [--skip-peers] [--jobs ours-global-rx ...] [--runners python qgis_process] [--split-size 3000]``

Our jobs also run through QGIS's own runner, ``qgis_process`` (the Processing algorithm in a throw-away profile,
as ``scripts/qgis_process.py`` runs it): that is the user's number, and QGIS's process differs from plain Python
(Debian's links GSL's reference CBLAS first: ``fers_qgis/core/linalg.py``). Each QGIS row gives its ratio to
the plain Python run of the same job; the notes give the job's own time, without process start and imports.

Peers: Spectral Python's ``spectral.rx`` (global and windowed, in memory) and the training package's torch
pipeline (``training.inference``: the whole scene in memory, as the published code runs), on the same untrained
B = 50 networks that our ONNX pipeline runs. Children may use 80% of physical memory; a peer that needs more
fails, and the table says so.

Case ``split``: split mode (``fers detect --split``, ``fers_qgis/cli/split.py``) of global RX and FERS on a uint16
raster, on a Dask LocalCluster of 1 and 2 worker processes, against the single-process engine, and what the
cluster itself costs per task and per byte moved between workers (docs/SCALING.md).
"""
import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

import numpy as np
from osgeo import gdal

from fers_qgis.core.raster import gdal_errors_as_exceptions

GDAL_TYPES = {"float32": gdal.GDT_Float32, "uint16": gdal.GDT_UInt16}
LOCAL_WINDOWS = (3, 15)  # the plugin's default windows
LOCAL_MAX_SIZE = 1000  # our local RX: the largest raster it is benchmarked on within make bench's time
PEER_LOCAL_MAX_SIZE = 100  # Spectral Python solves a covariance per pixel from scratch: 100 s at 100 x 100 x 200
QGIS_MAX_SIZE = 1000  # through qgis_process on float32 rasters up to this size (make bench within 15 minutes)


def write_benchmark_raster(path: str, size: int, bands: int, dtype: str, seed: int = 0) -> None:
    """A size x size x bands raster of correlated spectra, written in strips so generation memory stays small."""
    rng = np.random.default_rng(seed)
    mixing = rng.uniform(0, 1, size=(bands, 12)).astype(np.float32)
    with gdal_errors_as_exceptions():
        dataset = gdal.GetDriverByName("GTiff").Create(
            path, size, size, bands, GDAL_TYPES[dtype], ["TILED=YES", "INTERLEAVE=PIXEL", "BIGTIFF=IF_SAFER"])
        strip = max(1, 2**24 // (size * bands))
        # Sensor noise: windows at random offsets into one pool drawn once (drawing 1.8e9 normals would take
        # longer than the benchmarks of the 3000 x 3000 raster's RX).
        pool = rng.standard_normal(size=(bands, 2 * strip * size), dtype=np.float32) * 20
        for top in range(0, size, strip):
            rows = min(strip, size - top)
            sources = rng.gamma(2.0, 1.0, size=(12, rows * size)).astype(np.float32)
            block = mixing @ sources
            block *= 1000
            offset = int(rng.integers(0, strip * size + 1))
            block += pool[:, offset:offset + rows * size]
            np.clip(block, 0, 65535, out=block)  # in place: generating 7 GB must not take minutes
            dataset.WriteArray(block.reshape(bands, rows, size).astype(dtype, copy=False), 0, top)
        dataset = None


# Child-process job bodies: {src} raster in, {out} file out, {run} an exported model's training run, {model} its
# spectral ONNX file. Each exits 0 on success; what it prints last becomes the row's note.
JOBS = {
    "ours-global-rx": ("from fers_qgis.core.detection import detect_rx; "
                       "summary = detect_rx({src!r}, {out!r}); print(f'job {{summary.seconds:.2f}} s')"),
    "ours-local-rx": ("from fers_qgis.core.detection import detect_rx, RxOptions; "
                      f"options = RxOptions(detector='local', inner_window={LOCAL_WINDOWS[0]}, "
                      f"outer_window={LOCAL_WINDOWS[1]}); "
                      "summary = detect_rx({src!r}, {out!r}, options); print(f'job {{summary.seconds:.2f}} s')"),
    "ours-fers": ("from fers_qgis.core.enhancement import detect_fers; summary = detect_fers({src!r}, {out!r}, "
                  "{model!r}); print(f'job {{summary.seconds:.2f}} s')"),
    "spectral-global-rx": ("import numpy as np, spectral; from osgeo import gdal; "
                           "d = gdal.Open({src!r}); x = np.moveaxis(d.ReadAsArray(), 0, -1); "
                           "spectral.rx(x)"),
    "spectral-local-rx": ("import numpy as np, spectral; from osgeo import gdal; spectral.settings.show_progress=False; "
                          "d = gdal.Open({src!r}); x = np.moveaxis(d.ReadAsArray(), 0, -1); "
                          f"spectral.rx(x, window={LOCAL_WINDOWS})"),
    "torch-fers": "from training.inference import scene_scores; scene_scores({run!r}, {src!r})",
}
# Our jobs as qgis_process runs them: the Processing algorithm and the parameters that make the same core call.
QGIS_JOBS = {
    "ours-global-rx": ("fers:detectanomaliesrx", {}),
    "ours-local-rx": ("fers:detectanomaliesrx", {"DETECTOR": "1", "INNER_WINDOW": str(LOCAL_WINDOWS[0]),
                                                 "OUTER_WINDOW": str(LOCAL_WINDOWS[1])}),
    "ours-fers": ("fers:detectanomaliesfers", {"MODEL_FILE": "{model}"}),
}
RUNNERS = ("python", "qgis_process")
# The peer each of our jobs is compared with.
PEERS = {"ours-global-rx": "spectral-global-rx", "ours-local-rx": "spectral-local-rx", "ours-fers": "torch-fers"}
# A job that asks the FERS run to stop after a few seconds and prints how long stopping took.
CANCEL_JOB = """
import time
from fers_qgis.core.enhancement import detect_fers
from fers_qgis.core.errors import Cancelled
from fers_qgis.core.progress import Progress
class StopAfter(Progress):
    def __init__(self, seconds):
        self.deadline = time.perf_counter() + seconds
    def is_cancelled(self):
        return time.perf_counter() > self.deadline
progress = StopAfter(10.0)
try:
    detect_fers({src!r}, {out!r}, {model!r}, progress=progress)
except Cancelled:
    print(f"cancel honoured after {{time.perf_counter() - progress.deadline:.2f}} s")
"""


def make_benchmark_model(folder: str) -> Tuple[str, str]:
    """(run folder, spectral ONNX file) of an untrained B = 50 model set with the shipped architecture: speed and
    memory do not depend on the weights, and the torch peer runs the very same networks."""
    import json

    import torch

    from training import export, train
    from training.models.student import SpatialStudent
    from training.models.teacher import SpectralEnhancer

    run, _ = benchmark_model_paths(folder)
    os.makedirs(run, exist_ok=True)
    torch.manual_seed(0)
    torch.save(SpectralEnhancer(50).state_dict(), os.path.join(run, train.ENHANCER_FILE))
    torch.save(SpatialStudent(50).state_dict(), os.path.join(run, train.STUDENT_FILE))
    with open(os.path.join(run, train.CONFIG_FILE), "w") as handle:
        json.dump({"stage": "student", "bands": 50, "band_mode": "first", "tile_size": 64}, handle)
    spectral, _ = export.export_run(run, os.path.join(folder, "models"), "bench", summary={"purpose": "benchmark"})
    return run, spectral


def benchmark_model_paths(folder: str) -> Tuple[str, str]:
    return os.path.join(folder, "model_run"), os.path.join(folder, "models", "bench.spectral.onnx")


# Split mode on a LocalCluster of {workers} processes; prints the cluster's start time and each stage's.
SPLIT_JOB = """
import logging, time
from distributed import Client, LocalCluster
from fers_qgis.cli.split import split_fers, split_rx
stages = []
class Stages(logging.Handler):
    def emit(self, record):
        stages.append(record.getMessage())
log = logging.getLogger("fers_qgis.cli.split")
log.setLevel(logging.INFO)
log.addHandler(Stages())
started = time.perf_counter()
with LocalCluster(n_workers={workers}, threads_per_worker=1, processes=True, dashboard_address=":0",
                  silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
    ready = time.perf_counter()
    {call}
print("; ".join([f"cluster start {{ready - started:.1f}} s"] + stages))
"""
SPLIT_CALLS = {"split-global-rx": "split_rx(client, {src!r}, {out!r})",
               "split-fers": "split_fers(client, {src!r}, {out!r}, {model!r})"}
SPLIT_SINGLE = {"split-global-rx": "ours-global-rx", "split-fers": "ours-fers"}
SPLIT_WORKERS = (1, 2)
# The cluster's own costs on 2 workers: a round trip of 1000 empty tasks, and 256 MB moved between two workers.
OVERHEAD_JOB = """
import logging, time
import numpy as np
from distributed import Client, LocalCluster
with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                  silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
    first, second = list(client.scheduler_info()["workers"])
    client.gather(client.map(abs, range(100), pure=False))
    started = time.perf_counter()
    client.gather(client.map(abs, range(1000), pure=False))
    per_task = (time.perf_counter() - started) / 1000
    data = client.submit(np.ones, 2**25, workers=[first], pure=False)
    client.submit(np.sum, data, workers=[first], pure=False).result()
    started = time.perf_counter()
    client.submit(np.sum, data, workers=[first], pure=False).result()
    local = time.perf_counter() - started
    started = time.perf_counter()
    client.submit(np.sum, data, workers=[second], pure=False).result()
    moved = time.perf_counter() - started - local
print(f"{per_task * 1000:.2f} ms per task; {2**28 / moved / 2**20:.0f} MB/s between workers "
      f"({moved / 2**28 * 1e9:.2f} ns per byte)")
"""


# Children may use at most 80% of physical memory: an in-memory peer too big for the machine fails with a
# MemoryError instead of driving the machine into swap or the OOM killer. Set by the child itself: a preexec_fn
# would make subprocess fork instead of vfork, and the forked copy of this process would count in the child's peak.
MEMORY_LIMIT = ("import resource; limit = int({limit}); resource.setrlimit(resource.RLIMIT_AS, (limit, limit))\n")


def measure(code: str) -> Tuple[Optional[float], Optional[float], str]:
    """(seconds, peak MB, note) of a job in a fresh Python process; seconds None where it failed (e.g. out of
    memory)."""
    seconds, peak, lines = measure_command([sys.executable, "-c", MEMORY_LIMIT.format(limit=memory_limit()) + code],
                                           dict(os.environ))
    return seconds, peak, lines[-1] if lines else ""


def measure_in_qgis(job: str, source: str, output: str, model: str, profile: str
                    ) -> Tuple[Optional[float], Optional[float], str]:
    """(seconds, peak MB, note) of one of our jobs run by qgis_process; the note is the job's own time."""
    from scripts import qgis_process

    algorithm, parameters = QGIS_JOBS[job]
    arguments = [f"{key}={value.format(model=model)}" for key, value in
                 {"INPUT": source, **parameters, "OUTPUT": output}.items()]
    seconds, peak, lines = measure_command([qgis_process.QGIS_PROCESS, "run", algorithm, "--", *arguments],
                                           qgis_process.headless_environment(profile))
    if seconds is None:
        return seconds, peak, lines[-1]
    # The algorithm's summary line: "Scored N valid pixels ... in 7.9 s."
    job_time = [match.group(1) for match in map(re.compile(r"^Scored .* in ([0-9.]+) s\.$").match, lines) if match]
    return seconds, peak, f"job {job_time[-1]} s" if job_time else ""


def prepare_qgis_profile(profile: str) -> None:
    """A throw-away QGIS profile with the plugin enabled and this venv's onnxruntime where the plugin looks."""
    from scripts import qgis_process

    enabled = qgis_process.run(["plugins", "enable", qgis_process.PLUGIN_NAME], profile)
    if enabled.returncode != 0:
        raise RuntimeError(enabled.stdout + enabled.stderr)
    qgis_process.provide_onnxruntime(profile)


def measure_command(command: List[str], environment: Dict[str, str]
                    ) -> Tuple[Optional[float], Optional[float], List[str]]:
    """(seconds, peak MB, lines printed) of a command; where it failed, seconds None and one line saying why."""
    with tempfile.TemporaryFile() as output, tempfile.TemporaryFile() as error:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=output, stderr=error, stdin=subprocess.DEVNULL,
                                 env={**environment, "OMP_NUM_THREADS": str(os.cpu_count())})
        _, status, usage = os.wait4(child.pid, 0)  # the child's own peak resident memory
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        output.seek(0)
        error.seek(0)
        lines = output.read().decode(errors="replace").strip().splitlines()
        failure = error.read().decode(errors="replace").strip().splitlines()
    if child.returncode != 0:
        return None, usage.ru_maxrss / 1024, [("failed: " + (failure[-1] if failure else f"exit {status}"))[:90]]
    return seconds, usage.ru_maxrss / 1024, lines


def machine_description() -> str:
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {memory_gb:.0f} GiB, "
            f"Python {platform.python_version()}, numpy {np.__version__}, GDAL {gdal.__version__}")


# Peers work in memory: what they would need (bytes per pixel), to skip the ones that cannot run here at all.
PEER_BYTES_PER_PIXEL = {"spectral-global-rx": lambda bands, itemsize: bands * (itemsize + 8 * 2),
                        "spectral-local-rx": lambda bands, itemsize: bands * (itemsize + 8 * 2),
                        "torch-fers": lambda bands, itemsize: bands * (itemsize + 8 * 3) + 4500}
ITEMSIZE = {"float32": 4, "uint16": 2}


def memory_limit() -> float:
    """The cap on each child's memory: 80% of physical memory."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.8


def jobs_for(size: int, dtype: str, args) -> List[str]:
    """The jobs run on one raster, within make bench's 15 minutes: local RX up to 1000 x 1000 (Spectral Python's,
    a covariance per pixel, on the small float32 raster only), the largest size on float32 only."""
    if size > 1000 and dtype != "float32":
        return []
    jobs = []
    for job in args.jobs:
        if "local" in job and (size > LOCAL_MAX_SIZE or (job.startswith("spectral") and (
                dtype != "float32" or size > PEER_LOCAL_MAX_SIZE))):
            continue
        if not job.startswith("ours") and (args.skip_peers or "python" not in args.runners):
            continue
        jobs.append(job)
    return jobs


def peer_too_big(job: str, size: int, bands: int, dtype: str) -> str:
    """Why an in-memory peer cannot run at this size here, or ''."""
    need = PEER_BYTES_PER_PIXEL.get(job, lambda *_: 0)(bands, ITEMSIZE[dtype]) * size * size
    if need <= memory_limit():
        return ""
    return f"cannot run: needs about {need / 2**30:.0f} GiB in memory, more than {memory_limit() / 2**30:.0f} GiB"


def run_split_cases(folder: str, model: str, size: int, bands: int) -> List[str]:
    """Split mode against the single-process engine on one uint16 raster, and the cluster's own costs; table rows."""
    rows = ["| case | workers | seconds | Mpx x bands / s | peak MB (largest process) | single / split | stages |",
            "|---|---|---|---|---|---|---|"]
    print("\n".join(rows), flush=True)
    _, _, note = measure(OVERHEAD_JOB)
    rows.append(f"| cluster costs (2 workers) | 2 | | | | | {note} |")
    print(rows[-1], flush=True)
    source = os.path.join(folder, f"split_{size}_uint16.tif")
    subprocess.run([sys.executable, "-c", f"from benchmarks.bench import write_benchmark_raster as w; "
                    f"w({source!r}, {size}, {bands}, 'uint16')"], check=True)
    rate = size * size * bands / 1e6
    for case, single in SPLIT_SINGLE.items():
        paths = dict(src=source, out=os.path.join(folder, f"{case}.tif"), model=model)
        single_seconds, peak, _ = measure(JOBS[single].format(**paths))
        rows.append(f"| {single} (single process) | - | {single_seconds:.1f} | {rate / single_seconds:.1f} | "
                    f"{peak:.0f} | | |" if single_seconds else f"| {single} | - | failed | | | | |")
        print(rows[-1], flush=True)
        for workers in SPLIT_WORKERS:
            if os.path.exists(paths["out"]):
                os.remove(paths["out"])
            seconds, peak, note = measure(SPLIT_JOB.format(workers=workers, call=SPLIT_CALLS[case].format(**paths)))
            ratio = f"{single_seconds / seconds:.2f}" if seconds and single_seconds else ""
            rows.append(f"| {case} | {workers} | {seconds:.1f} | {rate / seconds:.1f} | {peak:.0f} | {ratio} | "
                        f"{note} |" if seconds else f"| {case} | {workers} | - | | {peak:.0f} | | {note} |")
            print(rows[-1], flush=True)
    os.remove(source)
    return rows


def best_of(repeat: int, measurement, *arguments) -> Tuple[Optional[float], Optional[float], str]:
    """The fastest of ``repeat`` runs of a measurement, or the first failure."""
    runs = []
    for _ in range(max(1, repeat)):
        runs.append(measurement(*arguments))
        if runs[-1][0] is None:
            return runs[-1]
    return min(runs, key=lambda run: run[0])


def table_row(label: str, job: str, values: int, seconds: Optional[float], peak: float, time_ratio: str,
              memory_ratio: str, qgis_ratio: str, note: str) -> str:
    """One row of the table; a failed run (seconds None) shows dashes."""
    timing = f"{seconds:.2f} | {values / seconds / 1e6:.1f}" if seconds else "- | -"
    return f"| {label} | {job} | {timing} | {peak:.0f} | {time_ratio} | {memory_ratio} | {qgis_ratio} | {note} |"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 3000])
    parser.add_argument("--bands", type=int, default=200)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "uint16"], choices=sorted(GDAL_TYPES))
    parser.add_argument("--skip-peers", action="store_true", help="only our detectors")
    parser.add_argument("--jobs", nargs="+", default=list(JOBS), choices=list(JOBS), help="only these jobs")
    parser.add_argument("--runners", nargs="+", default=list(RUNNERS), choices=RUNNERS,
                        help=f"run our jobs in plain Python, through qgis_process (float32 rasters up to "
                             f"{QGIS_MAX_SIZE} px a side), or both")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each of our jobs this many times and keep the fastest (a busy machine's noise)")
    parser.add_argument("--markdown", default="build/bench.md", help="also write the table here")
    parser.add_argument("--cases", nargs="+", default=["detectors", "split"], choices=["detectors", "split"],
                        help="detectors: ours against the peers; split: split mode on 1 and 2 workers")
    parser.add_argument("--split-size", type=int, default=3000, help="side of the split-mode raster, pixels")
    args = parser.parse_args(argv)
    if "split" in args.cases:
        with tempfile.TemporaryDirectory(prefix="fers-bench-") as folder:
            subprocess.run([sys.executable, "-c", f"from benchmarks.bench import make_benchmark_model as make; "
                            f"make({folder!r})"], check=True, capture_output=True)
            rows = [f"machine: {machine_description()}", ""] + run_split_cases(
                folder, benchmark_model_paths(folder)[1], args.split_size, args.bands)
        split_markdown = os.path.join(os.path.dirname(os.path.abspath(args.markdown)), "bench_split.md")
        os.makedirs(os.path.dirname(split_markdown), exist_ok=True)
        with open(split_markdown, "w") as handle:
            handle.write("\n".join(rows) + "\n")
    if "detectors" not in args.cases:
        return 0
    started = time.perf_counter()
    lines = [f"machine: {machine_description()}", "",
             "| raster | job | seconds | Mpx x bands / s | peak MB | ours / peer time | ours / peer memory | "
             "QGIS / Python time | note |",
             "|---|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    with tempfile.TemporaryDirectory(prefix="fers-bench-") as folder:
        # Made in a child: this process must stay small, its resident memory counts in every child's peak.
        subprocess.run([sys.executable, "-c", f"from benchmarks.bench import make_benchmark_model as make; "
                        f"make({folder!r})"], check=True, capture_output=True)
        run, model = benchmark_model_paths(folder)
        profile = os.path.join(folder, "qgis-profile")
        if "qgis_process" in args.runners:
            subprocess.run([sys.executable, "-c", f"from benchmarks.bench import prepare_qgis_profile as prepare; "
                            f"prepare({profile!r})"], check=True, capture_output=True)
        for size in args.sizes:
            for dtype in args.dtypes:
                jobs = jobs_for(size, dtype, args)
                if not jobs:
                    continue
                source = os.path.join(folder, f"bench_{size}_{dtype}.tif")
                # Written by a child too: GDAL's cache of the written blocks would stay in this process's memory.
                subprocess.run([sys.executable, "-c", f"from benchmarks.bench import write_benchmark_raster as w; "
                                f"w({source!r}, {size}, {args.bands}, {dtype!r})"], check=True)
                label = f"{size}x{size}x{args.bands} {dtype}"
                results = {}
                # Peers first, so that each of our rows can show its ratios.
                for job in sorted(jobs, key=lambda name: name.startswith("ours")):
                    too_big = peer_too_big(job, size, args.bands, dtype)
                    if too_big:
                        lines.append(f"| {label} | {job} | - | - | - | | | | {too_big} |")
                        print(lines[-1], flush=True)
                        continue
                    output = os.path.join(folder, f"{job}.tif")
                    if job.startswith("ours") and "python" not in args.runners:
                        python = None
                    else:
                        code = JOBS[job].format(src=source, out=output, run=run, model=model)
                        python = results[job] = best_of(args.repeat if job.startswith("ours") else 1, measure, code)
                        peer = results.get(PEERS.get(job, ""))
                        ratios = [f"{python[0] / peer[0]:.2f}" if peer[0] else "peer failed",
                                  f"{python[1] / peer[1]:.2f}" if peer[0] else ""] if peer and python[0] else ["", ""]
                        lines.append(table_row(label, job, size * size * args.bands, python[0], python[1], *ratios, "",
                                               python[2]))
                        print(lines[-1], flush=True)
                    if job.startswith("ours") and "qgis_process" in args.runners and size <= QGIS_MAX_SIZE \
                            and dtype == "float32":
                        seconds, peak, note = best_of(args.repeat, measure_in_qgis, job, source, output, model, profile)
                        ratio = f"{seconds / python[0]:.2f}" if seconds and python and python[0] else ""
                        lines.append(table_row(label, f"{job} in qgis_process", size * size * args.bands, seconds,
                                               peak, "", "", ratio, note))
                        print(lines[-1], flush=True)
                if size == max(args.sizes) and dtype == "float32" and "python" in args.runners \
                        and "ours-fers" in args.jobs:
                    _, peak, note = measure(CANCEL_JOB.format(src=source, out=os.path.join(folder, "cancel.tif"),
                                                              model=model))
                    lines.append(f"| {label} | ours-fers cancelled after 10 s | | | {peak:.0f} | | | | {note} |")
                    print(lines[-1], flush=True)
                os.remove(source)
    lines += ["", f"make bench took {time.perf_counter() - started:.0f} s"]
    print(lines[-1])
    os.makedirs(os.path.dirname(os.path.abspath(args.markdown)), exist_ok=True)
    with open(args.markdown, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
