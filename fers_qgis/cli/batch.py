"""Many rasters, one job each: the jobs of ``fers detect`` and ``fers import``, run in this process or one Dask task
per input.

Inputs are files, folders (their rasters or products) or glob patterns; GDAL paths (``/vsis3/...``, ``/vsicurl/...``,
``DRIVER:...``) pass through untouched. Each input's output (``OUT/NAME_DETECTOR_anomalies.tif``, ``OUT/NAME.tif``)
is written by the core's RasterWriter (a hidden file renamed into place when complete), so an output that exists is
finished: a rerun skips it. Dask is imported only when a cluster is used; QGIS never needs it.
"""
import dataclasses
import glob
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, Iterable, List, Optional, Sequence, Tuple, Union

from ..core import products
from ..core.detection import RxOptions, detect_rx
from ..core.enhancement import FersOptions, detect_fers
from ..core.errors import FersError
from ..core.onnx_runtime import shipped_model_for
from ..core.progress import Progress, Stage
from ..core.raster import describe_raster, is_gdal_path

# File name endings taken from a folder (a folder may also hold labels, reports, quick-looks): rasters for
# detection, NetCDF/HDF5 files (imported on the fly, as the plugin does) and products for import.
PRODUCT_SUFFIXES = (".nc", ".he5", ".h5", ".hdr", "metadata.xml", ".zip")
RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".img", ".bsq", ".bil", ".bip", ".dat", ".nc", ".he5", ".h5")
# A task that raises (a crash, a worker that died) is run again this many times before its input is reported failed.
TASK_RETRIES = 2


@dataclass(frozen=True)
class DetectionJob:
    """One raster to score. ``model_path`` None takes the shipped model the plugin's Automatic choice takes."""

    input_path: str
    output_path: str
    options: Union[RxOptions, FersOptions]
    model_path: Optional[str] = None
    mask_path: Optional[str] = None

    def resolved_model(self) -> str:
        """The FERS model set this job runs: the given file, or the automatic choice for the raster's bands."""
        return self.model_path or shipped_model_for(describe_raster(self.input_path).band_count)

    def run(self, progress: Optional[Progress] = None):
        """Score the raster with the core job the plugin runs; returns its DetectionSummary. A NetCDF/HDF5 product
        is imported to a temporary GeoTIFF first (hidden, beside the output, deleted after), as the plugin does."""
        if products.container_file(self.input_path):
            folder = os.path.dirname(os.path.abspath(self.output_path))
            with tempfile.TemporaryDirectory(prefix=".fers-import-", dir=folder) as temporary:
                imported = os.path.join(temporary, "imported.tif")
                products.import_scene(self.input_path, imported, Stage(progress, 0.0, 0.3))
                return dataclasses.replace(self, input_path=imported).run(Stage(progress, 0.3, 1.0))
        if isinstance(self.options, RxOptions):
            return detect_rx(self.input_path, self.output_path, self.options, self.mask_path, progress)
        return detect_fers(self.input_path, self.output_path, self.resolved_model(), self.options, self.mask_path,
                           progress)


@dataclass(frozen=True)
class ImportJob:
    """One product to import to a GeoTIFF (``fers import``)."""

    input_path: str
    output_path: str
    geometry: str = products.MAP_GRID

    def run(self, progress: Optional[Progress] = None):
        """Import with the core's import_product; returns its ImportSummary."""
        return products.import_product(self.input_path, self.output_path, progress, self.geometry)


@dataclass(frozen=True)
class JobResult:
    """What became of one input: status 'done', 'skipped' or 'failed', with the failure's sentence."""

    input_path: str
    output_path: str
    status: str
    seconds: float = 0.0
    valid_pixels: int = 0
    message: str = ""


Job = Union[DetectionJob, ImportJob]


def run_job(job: Job, progress: Optional[Progress] = None) -> JobResult:
    """Run one job; a refusal of the core (bad input, missing model) becomes a failed result, not an exception.

    Other exceptions propagate, so that Dask retries the task (a crash may not happen twice)."""
    started = time.perf_counter()
    try:
        summary = job.run(progress)
    except FersError as error:
        return JobResult(job.input_path, job.output_path, "failed", time.perf_counter() - started, message=str(error))
    return JobResult(job.input_path, job.output_path, "done", summary.seconds, summary.valid_pixels)


def expand_inputs(inputs: Sequence[str], suffixes: Sequence[str] = RASTER_SUFFIXES
                  ) -> Tuple[List[str], List[JobResult]]:
    """(rasters, failures): files as given, folders' files with these name endings sorted, glob patterns' matches
    sorted; an input that names nothing becomes a failure line of its own."""
    rasters: List[str] = []
    failures: List[JobResult] = []
    for item in inputs:
        if is_gdal_path(item) or os.path.isfile(item):
            found = [item]
        elif os.path.isdir(item):
            found = sorted(os.path.join(item, name) for name in os.listdir(item)
                           if name.lower().endswith(tuple(suffixes)) and not name.startswith("."))
        elif glob.has_magic(item):
            found = sorted(glob.glob(item))
        else:
            found = []
        if not found:
            what = "matches no file" if glob.has_magic(item) else (
                "holds no raster" if os.path.isdir(item) else "does not exist")
            failures.append(JobResult(item, "", "failed", message=f"{item} {what}."))
        rasters.extend(path for path in found if path not in rasters)
    return rasters, failures


def input_stem(input_path: str) -> str:
    """NAME for NAME.ext, also for GDAL paths (the file in NETCDF:"dir/NAME.nc":variable, the last component of
    /vsis3/bucket/NAME.tif)."""
    match = re.match(r'^[A-Za-z0-9_]{2,}:"?(?P<file>[^"]+?)"?:[^:/]+$', input_path)
    name = os.path.basename((match.group("file") if match else input_path).rstrip("/"))
    return os.path.splitext(name)[0] or name


def output_name(input_path: str, detector: str) -> str:
    """NAME_DETECTOR_anomalies.tif for NAME.ext."""
    return f"{input_stem(input_path)}_{detector}_anomalies.tif"


def plan_jobs(rasters: Sequence[str], out_dir: str, name_for: Callable[[str], str],
              make_job: Callable[[str, str], Job], overwrite: bool) -> Tuple[List[Job], List[JobResult]]:
    """(jobs to run, results of the rest): finished outputs are skipped unless ``overwrite``; inputs whose outputs
    would collide (same name in two folders) fail, since one would overwrite the other."""
    jobs: List[Job] = []
    results: List[JobResult] = []
    claimed = {}
    for raster in rasters:
        output = os.path.join(out_dir, name_for(raster))
        if output in claimed:
            results.append(JobResult(raster, output, "failed", message=(
                f"{raster} would write {os.path.basename(output)}, like {claimed[output]}: score them in separate "
                f"runs or output folders.")))
            continue
        claimed[output] = raster
        if os.path.exists(output) and not overwrite:
            results.append(JobResult(raster, output, "skipped", message="output exists (use --overwrite)"))
            continue
        jobs.append(make_job(raster, output))
    return jobs, results


def remove_partial_files(output_path: str) -> None:
    """Delete the hidden partial file and temporary folder a killed worker of this output left behind (never the
    output itself)."""
    folder, name = os.path.split(os.path.abspath(output_path))
    for leftover in glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(name)}.*.partial*")):
        if os.path.isdir(leftover):
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            os.remove(leftover)


def run_here(jobs: Iterable[Job], progress_for: Callable[[Job], Progress]) -> List[JobResult]:
    """Run the jobs one after another in this process."""
    return [run_job(job, progress_for(job)) for job in jobs]


def run_on_cluster(client, jobs: Sequence[Job], show_progress: bool) -> List[JobResult]:
    """One Dask task per raster (retried when a worker dies or the task crashes); a task that still fails becomes
    a failed result with the reason, and the others finish."""
    futures = client.map(run_job, jobs, retries=TASK_RETRIES, pure=False)
    if show_progress:
        from distributed import progress
        progress(futures)
    results = []
    for job, future in zip(jobs, futures):
        try:
            results.append(future.result())
        except Exception as error:  # a crash or KilledWorker after the retries: reported, the others go on
            results.append(JobResult(job.input_path, job.output_path, "failed",
                                     message=f"{type(error).__name__}: {error}"))
    return results
