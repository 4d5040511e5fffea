"""The FERS jobs: background-feature enhancement with the two ONNX branches, then RX, in bounded memory.

Passes over the raster (``FersJob.run``, on any scheduler of ``pipeline``):
1. the model bands, written to a temporary raster, and their statistics over valid pixels
   (``scene.ModelBandStatistics``): the normalisation, the fill of invalid pixels and the window the networks see;
2. for each output block, its features (``features.FeatureBlocks``); the cubes a detector needs are written to
   temporary rasters (``workspace``) while their RX background statistics accumulate;
3. RX scoring of the temporary cubes (global or local), then the output: the one map, or the product of the
   scaled maps (product rule), optionally scaled to 0-1.

Blocks are 2-D (rows x columns), so peak memory is set by ``memory_budget_mb`` and the tile size, not by the
raster's size (GDAL's own block cache comes on top, bounded by GDAL_CACHEMAX). Temporary files live in a hidden
folder next to the output and are deleted at the end, also on error or cancel; the output itself is written
through RasterWriter, so a failed run leaves nothing behind.
"""
import os
import time
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from typing import Dict, Optional, Sequence, Tuple

from . import rx
from .detection import (SCORES, Background, DetectionSummary, check_windows, local_window_components, scoring,
                        scoring_plan, write_score_output)
from .errors import InputError
from .features import CUBE_WORDS, PLAIN, SPATIAL, SPECTRAL, SUM, feature_window_plan, feature_writing
from .model_format import FUSIONS
from .onnx_runtime import FersModelSet, load_model_set
from .output import RasterWriter, check_output_path
from .pipeline import LocalScheduler
from .progress import Progress, Stage
from .workspace import RasterFile
from .scene import (MODEL_BANDS, ModelBands, ModelBandStatistics, Normalisation, model_band_writing,
                    open_model_bands, report_band_order)

# The published detectors and their comparisons: which cube RX runs on, and how.
DETECTORS = ("fers", "fers-spectral", "fers-spatial", "rx", "fers-local")
PRODUCT_CUBES = {"product": (SPATIAL, SPECTRAL), "product-rx": (PLAIN, SPATIAL, SPECTRAL)}
FUSION_WORDS = {"product": " (product rule)", "product-rx": " (product rule with plain RX)"}


@dataclass(frozen=True)
class FersOptions:
    """Settings of a FERS detection run.

    ``fusion`` None uses the model's own rule ("sum": RX of x + spa_f + spe_f; "product": the product of the
    min-max scaled RX maps of x + spa_f and x + spe_f; "product-rx": that product times the scaled RX map of x);
    it applies to the "fers" detector. ``undeclared_fill``:
    pixels with one value in every band are fill (see ``validity``).
    """

    detector: str = "fers"
    fusion: Optional[str] = None
    inner_window: int = 3
    outer_window: int = 15
    scale_scores: bool = False
    memory_budget_mb: float = 512
    use_gpu: bool = False
    undeclared_fill: bool = True
    local_background: rx.LocalBackgroundRule = rx.LocalBackgroundRule()


def check_fers_options(options: FersOptions) -> None:
    """Refuse settings no FERS run can take, before anything else is looked at."""
    if options.detector not in DETECTORS:
        raise InputError(f"Unknown detector {options.detector!r}; choose one of {', '.join(DETECTORS)}.")
    if options.fusion is not None and options.fusion not in FUSIONS:
        raise InputError(f"Unknown fusion rule {options.fusion!r}; choose one of {', '.join(FUSIONS)}.")
    if options.detector == "fers-local":
        check_windows(options.inner_window, options.outer_window)
    if not options.memory_budget_mb > 0:
        raise InputError("The memory budget must be a positive number of megabytes.")


def prepare(input_path: str, output_paths: Sequence[Optional[str]], model_path: str, mask_path: Optional[str],
            use_gpu: bool, undeclared_fill: bool, budget: int, progress: Progress
            ) -> Tuple[FersModelSet, ModelBands]:
    """Every check, before any file is written: the model, the outputs, then the raster and its bad bands."""
    model = load_model_set(model_path, use_gpu)
    outputs = [path for path in output_paths if path]
    if len(set(os.path.realpath(path) for path in outputs)) != len(outputs):
        raise InputError("Two outputs were given the same file name: give each output its own file.")
    for path in outputs:
        check_output_path(path, [input_path, mask_path, model_path, model.spatial_path])
    return model, open_model_bands(input_path, model, mask_path, undeclared_fill, budget, progress)


def detector_cubes(detector: str, fusion: str) -> Tuple[str, ...]:
    """The cubes RX runs on for a detector (several for the product rules, whose maps are multiplied)."""
    if detector == "fers" and fusion in PRODUCT_CUBES:
        return PRODUCT_CUBES[fusion]
    if detector in ("fers", "fers-local"):
        return (SUM,)
    return {"fers-spectral": (SPECTRAL,), "fers-spatial": (SPATIAL,), "rx": (PLAIN,)}[detector]


def score_label(detector: str, fusion: str, options: FersOptions) -> str:
    """The output band's name: what the scores are."""
    labels = {"fers": "FERS-RX anomaly score" + FUSION_WORDS.get(fusion, ""),
              "fers-spectral": "FERS spectral branch anomaly score",
              "fers-spatial": "FERS spatial branch anomaly score",
              "rx": "plain RX anomaly score (model bands)",
              "fers-local": f"FERS local RX anomaly score (windows {options.inner_window}/{options.outer_window})"}
    return labels[detector] + (", scaled 0-1" if options.scale_scores else "")


def merge_by_name(first: Dict[str, rx.BackgroundStatistics], second: Dict[str, rx.BackgroundStatistics]
                  ) -> Dict[str, rx.BackgroundStatistics]:
    """Merge the statistics of each named cube; returns the first."""
    for name, statistics in second.items():
        first[name].merge(statistics)
    return first


def write_model_bands(scheduler, bands: ModelBands, budget: int, progress: Progress
                      ) -> Tuple[RasterFile, ModelBandStatistics]:
    """Pass 1 of both FERS jobs on ``scheduler``: the model bands as a temporary raster, and their statistics."""
    rasters, statistics = scheduler.rasters(
        "model-bands", partial(model_band_writing, bands), bands.scan_plan(budget), {MODEL_BANDS: bands.count},
        ModelBandStatistics.merge, Stage(progress, 0.05, 0.15))
    return rasters[MODEL_BANDS], statistics


@dataclass
class FersJob:
    """A FERS detection, checked and planned (model loaded, bands and bad bands decided): the data every pass needs,
    and the job's one sequence of passes (``run``; see ``pipeline``). Plain data but for the model, which each
    process loads from ``model_path`` (and keeps)."""

    input_path: str
    output_path: str
    model_path: str
    options: FersOptions
    mask_path: Optional[str]
    bands: ModelBands
    budget: int
    fusion: str
    cube_names: Tuple[str, ...]
    started: float
    normalisation: Optional[Normalisation] = None  # set by pass 1

    @classmethod
    def plan(cls, input_path: str, output_path: str, model_path: str, options: FersOptions = FersOptions(),
             mask_path: Optional[str] = None, progress: Optional[Progress] = None) -> "FersJob":
        started = time.perf_counter()
        check_fers_options(options)
        budget = int(options.memory_budget_mb * 2**20)
        model, bands = prepare(input_path, [output_path], model_path, mask_path, options.use_gpu,
                               options.undeclared_fill, budget, progress or Progress())
        fusion = options.fusion or model.metadata.fusion
        return cls(input_path, output_path, model_path, options, mask_path, bands, budget, fusion,
                   detector_cubes(options.detector, fusion), started)

    @property
    def model(self) -> FersModelSet:
        return load_model_set(self.model_path, self.options.use_gpu)

    def background(self, name: str, statistics: rx.BackgroundStatistics, progress: Progress) -> Background:
        """The checked RX background of one cube, reported in the log."""
        info, bands = self.bands.info, self.bands.count
        background = Background.of(statistics, bands, info)
        progress.info(f"RX background of {CUBE_WORDS[name]}: {background.count} pixels, covariance rank "
                      f"{background.whitening.shape[1]} of {bands}.")
        if self.options.detector == "fers-local":
            local_window_components(info, self.options, background.whitening.shape[1])
        return background

    def run(self, scheduler, progress: Optional[Progress] = None) -> DetectionSummary:
        """Model-band statistics, features, scores of each cube, output: the passes of the job on ``scheduler``."""
        progress = progress or Progress()
        model, info = self.model, self.bands.info
        report_band_order(self.bands, model, progress)
        model_bands, statistics = write_model_bands(scheduler, self.bands, self.budget, progress)
        self.normalisation = statistics.normalisation(info, model, progress)
        cubes, cube_statistics = scheduler.rasters(
            "features", partial(feature_writing, model_bands, self.normalisation,
                                partial(load_model_set, self.model_path, self.options.use_gpu), self.cube_names,
                                True, self.budget),
            feature_window_plan(self.bands, model, self.cube_names, self.budget),
            {name: model.bands for name in self.cube_names}, merge_by_name, Stage(progress, 0.15, 0.7))

        local = self.options if self.options.detector == "fers-local" else None
        backgrounds = {name: self.background(name, cube_statistics[name], progress) for name in self.cube_names}
        maps = []
        span = 0.25 / len(self.cube_names)
        for index, name in enumerate(self.cube_names):
            scores, _ = scheduler.rasters(
                "scores", partial(scoring, cubes[name].reader, backgrounds[name], local, self.budget),
                scoring_plan(info, 4 * model.bands, local is not None, self.budget), {SCORES: 1}, None,
                Stage(progress, 0.7 + index * span, 0.7 + (index + 1) * span))
            maps.append(scores[SCORES])
        scheduler.once("output", partial(write_score_output, self.output_path, info,
                                         score_label(self.options.detector, self.fusion, self.options), maps,
                                         self.options.scale_scores, self.budget),
                       Stage(progress, 0.95, 1.0))
        return DetectionSummary(self.output_path, self.normalisation.valid_pixels, model.bands,
                                time.perf_counter() - self.started)


def detect_fers(input_path: str, output_path: str, model_path: str, options: FersOptions = FersOptions(),
                mask_path: Optional[str] = None, progress: Optional[Progress] = None) -> DetectionSummary:
    """Score every pixel with a FERS detector and write a single-band Float32 GeoTIFF on the input's grid.

    Invalid pixels (nodata, NaN/Inf, masked) take no part in the statistics and are written as nodata. All checks
    on the model, the raster and the outputs happen before any file is created; an error or a cancel leaves no
    output and no temporary files behind.
    """
    progress = progress or Progress()
    job = FersJob.plan(input_path, output_path, model_path, options, mask_path, Stage(progress, 0.0, 0.05))
    with LocalScheduler(output_path) as scheduler:
        return job.run(scheduler, progress)


def enhance_features(input_path: str, output_path: str, model_path: str, mask_path: Optional[str] = None,
                     spectral_output: Optional[str] = None, spatial_output: Optional[str] = None,
                     memory_budget_mb: float = 512, use_gpu: bool = False,
                     progress: Optional[Progress] = None, undeclared_fill: bool = True) -> DetectionSummary:
    """Write the enhanced cube x + spa_f + spe_f (Float32, one band per model band, with the model bands' names
    and wavelengths), and optionally spe_f and spa_f, on the input's grid; invalid pixels become nodata
    (``undeclared_fill`` as in ``FersOptions``). The feature pass writes straight into the outputs."""
    started = time.perf_counter()
    progress = progress or Progress()
    if not memory_budget_mb > 0:
        raise InputError("The memory budget must be a positive number of megabytes.")
    budget = int(memory_budget_mb * 2**20)
    model, bands = prepare(input_path, [output_path, spectral_output, spatial_output], model_path, mask_path,
                           use_gpu, undeclared_fill, budget, Stage(progress, 0.0, 0.05))
    report_band_order(bands, model, progress)
    with LocalScheduler(output_path) as scheduler:
        model_bands, statistics = write_model_bands(scheduler, bands, budget, progress)
        normalisation = statistics.normalisation(bands.info, model, progress)
        targets = {SUM: (output_path, "enhanced"), "spe_f": (spectral_output, "spectral features"),
                   "spa_f": (spatial_output, "spatial features")}
        with ExitStack() as stack:
            sinks = {name: stack.enter_context(RasterWriter(path, bands.info,
                                                            [f"{band} ({what})" for band in bands.band_names],
                                                            bands.wavelengths_nm))
                     for name, (path, what) in targets.items() if path}
            scheduler.write("features", partial(feature_writing, model_bands, normalisation,
                                                lambda: model, tuple(sinks), False, budget),
                            feature_window_plan(bands, model, (SUM,), budget), sinks, Stage(progress, 0.15, 1.0))
    return DetectionSummary(output_path, statistics.count, model.bands, time.perf_counter() - started)
