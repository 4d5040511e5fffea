"""``make bench``: wall time, throughput and peak memory of our detectors and of Spectral Python's, same rasters.

Synthetic rasters are generated in a temporary folder (never committed). Every measurement runs in a fresh
child process, so its peak resident memory (from ``wait4``) is that job's alone, imports included.

``python -m benchmarks.bench [--sizes 100 1000 3000] [--bands 200] [--dtypes float32 uint16] [--skip-peers]``
"""
import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import List, Optional, Tuple

import numpy as np
from osgeo import gdal

from fers_qgis.core.raster import gdal_errors_as_exceptions

GDAL_TYPES = {"float32": gdal.GDT_Float32, "uint16": gdal.GDT_UInt16}
LOCAL_WINDOWS = (3, 15)
LOCAL_MAX_SIZE = 100  # local RX solves a covariance per pixel: benchmarked on the small raster only


def write_benchmark_raster(path: str, size: int, bands: int, dtype: str, seed: int = 0) -> None:
    """A size x size x bands raster of correlated spectra, written in strips so generation memory stays small."""
    rng = np.random.default_rng(seed)
    mixing = rng.uniform(0, 1, size=(bands, 12))
    with gdal_errors_as_exceptions():
        dataset = gdal.GetDriverByName("GTiff").Create(
            path, size, size, bands, GDAL_TYPES[dtype], ["TILED=YES", "INTERLEAVE=PIXEL", "BIGTIFF=IF_SAFER"])
        strip = max(1, 2_000_000 // (size * bands))
        for top in range(0, size, strip):
            rows = min(strip, size - top)
            sources = rng.gamma(2.0, 1.0, size=(12, rows * size))
            block = (mixing @ sources * 1000 + rng.normal(scale=20, size=(bands, rows * size)))
            block = np.clip(block, 0, 65535).reshape(bands, rows, size)
            dataset.WriteRaster(0, top, size, rows, block.astype(np.float32 if dtype == "float32" else np.uint16)
                                .tobytes(), buf_type=GDAL_TYPES[dtype])
        dataset = None


# Child-process job bodies: each prints nothing and exits 0 on success.
JOBS = {
    "ours-global-rx": "from fers_qgis.core.detection import detect_rx, RxOptions; detect_rx({src!r}, {out!r})",
    "ours-local-rx": ("from fers_qgis.core.detection import detect_rx, RxOptions; detect_rx({src!r}, {out!r}, "
                      f"RxOptions(detector='local', inner_window={LOCAL_WINDOWS[0]}, outer_window={LOCAL_WINDOWS[1]}))"),
    "spectral-global-rx": ("import numpy as np, spectral; from osgeo import gdal; "
                           "d = gdal.Open({src!r}); x = np.moveaxis(d.ReadAsArray(), 0, -1); "
                           "spectral.rx(x)"),
    "spectral-local-rx": ("import numpy as np, spectral; from osgeo import gdal; spectral.settings.show_progress=False; "
                          "d = gdal.Open({src!r}); x = np.moveaxis(d.ReadAsArray(), 0, -1); "
                          f"spectral.rx(x, window={LOCAL_WINDOWS})"),
}


def measure(job: str, source: str, output: str) -> Tuple[Optional[float], Optional[float], str]:
    """(seconds, peak MB, note) of one job in a fresh process; None where it failed (e.g. out of memory)."""
    code = JOBS[job].format(src=source, out=output)
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             env={**os.environ, "OMP_NUM_THREADS": str(os.cpu_count())})
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    error = child.stderr.read().decode(errors="replace").strip().splitlines()
    if os.waitstatus_to_exitcode(status) != 0:
        return None, usage.ru_maxrss / 1024, (error[-1] if error else f"exit {status}")[:80]
    return seconds, usage.ru_maxrss / 1024, ""


def machine_description() -> str:
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {memory_gb:.0f} GiB, "
            f"Python {platform.python_version()}, numpy {np.__version__}, GDAL {gdal.__version__}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 3000])
    parser.add_argument("--bands", type=int, default=200)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "uint16"], choices=sorted(GDAL_TYPES))
    parser.add_argument("--skip-peers", action="store_true", help="only our detectors")
    args = parser.parse_args(argv)
    print(f"machine: {machine_description()}")
    header = f"{'raster':<22} {'detector':<20} {'seconds':>8} {'Mpx*band/s':>11} {'peak MB':>8}  note"
    print(header)
    rows: List[str] = []
    with tempfile.TemporaryDirectory(prefix="fers-bench-") as folder:
        for size in args.sizes:
            for dtype in args.dtypes:
                source = os.path.join(folder, f"bench_{size}_{dtype}.tif")
                write_benchmark_raster(source, size, args.bands, dtype)
                label = f"{size}x{size}x{args.bands} {dtype}"
                timings = {}
                for job in JOBS:
                    if "local" in job and size > LOCAL_MAX_SIZE:
                        continue
                    if job.startswith("spectral") and (args.skip_peers or size * size * args.bands * 8 > 8 * 2**30):
                        continue  # in-memory peer: would need more than 8 GB for the float64 cube
                    seconds, peak, note = measure(job, source, os.path.join(folder, f"{job}.tif"))
                    timings[job] = seconds
                    rate = f"{size * size * args.bands / seconds / 1e6:11.1f}" if seconds else f"{'-':>11}"
                    row = f"{label:<22} {job:<20} {seconds or float('nan'):8.2f} {rate} {peak:8.0f}  {note}"
                    print(row, flush=True)
                    rows.append(row)
                for kind in ("global-rx", "local-rx"):
                    ours, theirs = timings.get(f"ours-{kind}"), timings.get(f"spectral-{kind}")
                    if ours and theirs:
                        print(f"{label:<22} {kind:<20} ours/spectral time ratio {ours / theirs:.2f}", flush=True)
                os.remove(source)
    return 0


if __name__ == "__main__":
    sys.exit(main())
