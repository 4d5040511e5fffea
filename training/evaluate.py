"""Evaluate detectors on labelled scenes: ``python -m training.evaluate --scenes DIR --detector rx [--json OUT]``.

Every ``NAME.tif`` with a ``NAME_gt.tif`` beside it (1 = anomaly) in DIR is scored by the named detector through
the same core job the QGIS plugin runs, which writes a GeoTIFF that is read back here; the table gives the pixel
ROC AUC and the seconds of that job per scene, then the mean AUC.
"""
import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

import numpy as np
from osgeo import gdal

from fers_qgis.core.detection import RxOptions, detect_rx
from fers_qgis.core.enhancement import FersOptions, detect_fers
from fers_qgis.core.metrics import roc_auc
from fers_qgis.core.model_format import FUSIONS
from fers_qgis.core.onnx_runtime import shipped_model_for, shipped_models
from fers_qgis.core.output import OUTPUT_NODATA
from fers_qgis.core.raster import describe_raster, gdal_errors_as_exceptions

# A detector turns (input raster path, output GeoTIFF path) into a score raster at the output path.
Detector = Callable[[str, str], object]

# rx / rx-local: global / local (dual-window) RX on all bands. fers: RX on the FERS-enhanced cube with the model's
# fusion rule (product-rx in every shipped and exported model, or --fusion); fers-spectral / fers-spatial: RX on
# x + spe_f / x + spa_f alone; fers-local: local RX on x + spa_f + spe_f. Local detectors use the plugin's default
# windows and rule.
RX_DETECTORS = {"rx": RxOptions(detector="global"), "rx-local": RxOptions(detector="local")}
# fers-ensemble: the mean of the 0-1 scaled "fers" maps of every model set given (a random ensemble's baseline).
FERS_DETECTORS = ("fers", "fers-spectral", "fers-spatial", "fers-local", "fers-ensemble")
DETECTORS = tuple(RX_DETECTORS) + FERS_DETECTORS


def make_detector(name: str, models: Sequence[str] = (), fusion: Optional[str] = None) -> Detector:
    """The named detector as the plugin runs it. FERS detectors run, on each scene, the model set the plugin's
    default (automatic) choice takes among ``models`` (spectral files; default: the shipped sets); ``fusion``
    overrides the models' own rule (one of ``FUSIONS``)."""
    if name in RX_DETECTORS:
        return lambda scene, output: detect_rx(scene, output, RX_DETECTORS[name])
    if not (models or shipped_models()):
        raise SystemExit(f"The {name} detector needs a model: pass --model PATH.spectral.onnx (none is shipped).")

    def run(scene: str, output: str):
        model = shipped_model_for(describe_raster(scene).band_count, models or None)
        return detect_fers(scene, output, model, FersOptions(detector=name, fusion=fusion))

    def ensemble(scene: str, output: str):
        maps = []
        for index, model in enumerate(models):
            member = f"{output}.member{index}.tif"
            detect_fers(scene, member, model, FersOptions(fusion=fusion, scale_scores=True))
            maps.append(read_first_band(member).astype(np.float64))
            os.remove(member)
        mean = np.mean(maps, axis=0)
        mean[np.any([scores == OUTPUT_NODATA for scores in maps], axis=0)] = OUTPUT_NODATA
        write_scores(output, mean)
    if name == "fers-ensemble" and not models:
        raise SystemExit("The fers-ensemble detector averages the model sets given with --model: pass several.")
    return ensemble if name == "fers-ensemble" else run


def write_scores(path: str, scores_hw: np.ndarray) -> None:
    """A single-band Float32 GeoTIFF of scores (OUTPUT_NODATA where invalid)."""
    with gdal_errors_as_exceptions():
        dataset = gdal.GetDriverByName("GTiff").Create(path, scores_hw.shape[1], scores_hw.shape[0], 1,
                                                       gdal.GDT_Float32)
        dataset.GetRasterBand(1).WriteArray(scores_hw.astype(np.float32))
        dataset.GetRasterBand(1).SetNoDataValue(OUTPUT_NODATA)
        dataset = None


def runnable_detectors(models: Sequence[str] = ()) -> List[str]:
    """Every detector that can run: the FERS ones only when a model is given or shipped."""
    if not (models or shipped_models()):
        return list(RX_DETECTORS)
    return [name for name in DETECTORS if name != "fers-ensemble" or len(models) > 1]


@dataclass
class SceneResult:
    name: str
    auc: float
    seconds: float


def labelled_scenes(folder: str) -> List[str]:
    """Names of the scenes in ``folder`` that have both ``NAME.tif`` and ``NAME_gt.tif``."""
    names = sorted(entry[:-len("_gt.tif")] for entry in os.listdir(folder) if entry.endswith("_gt.tif"))
    return [name for name in names if os.path.exists(os.path.join(folder, f"{name}.tif"))]


def read_first_band(path: str) -> np.ndarray:
    with gdal_errors_as_exceptions():
        dataset = gdal.Open(path)  # kept in a variable: a band outliving its dataset crashes GDAL
        return dataset.GetRasterBand(1).ReadAsArray()


def evaluate_scene(detector: Detector, folder: str, name: str, workdir: str) -> SceneResult:
    """Run one detector on one scene and score its map against the ground truth (nodata pixels left out)."""
    output = os.path.join(workdir, f"{name}_scores.tif")
    started = time.perf_counter()
    detector(os.path.join(folder, f"{name}.tif"), output)
    seconds = time.perf_counter() - started
    scores = read_first_band(output).astype(np.float64)
    labels = read_first_band(os.path.join(folder, f"{name}_gt.tif")) == 1
    if scores.shape != labels.shape:
        raise ValueError(f"{name}: the ground truth is {labels.shape[::-1]} pixels but the scene is "
                         f"{scores.shape[::-1]}.")
    valid = scores != OUTPUT_NODATA
    return SceneResult(name, roc_auc(scores[valid], labels[valid]), seconds)


def evaluate(detector_name: str, folder: str, models: Sequence[str] = (), fusion: Optional[str] = None
             ) -> List[SceneResult]:
    detector = make_detector(detector_name, models, fusion)
    names = labelled_scenes(folder)
    if not names:
        raise SystemExit(f"No NAME.tif + NAME_gt.tif pairs found in {folder}.")
    with tempfile.TemporaryDirectory(prefix="fers-eval-") as workdir:
        return [evaluate_scene(detector, folder, name, workdir) for name in names]


def format_table(detector_name: str, results: List[SceneResult]) -> str:
    width = max(len("scene"), *(len(result.name) for result in results))
    lines = [f"detector: {detector_name}", f"{'scene':<{width}}  {'AUC':>7}  {'seconds':>8}"]
    lines += [f"{result.name:<{width}}  {result.auc:7.4f}  {result.seconds:8.2f}" for result in results]
    mean_auc = float(np.mean([result.auc for result in results]))
    lines.append(f"{'mean':<{width}}  {mean_auc:7.4f}  {sum(result.seconds for result in results):8.2f}")
    return "\n".join(lines)


def to_json(detector_name: str, results: List[SceneResult]) -> dict:
    return {
        "detector": detector_name,
        "scenes": [{"name": result.name, "auc": result.auc, "seconds": result.seconds} for result in results],
        "mean_auc": float(np.mean([result.auc for result in results])),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", required=True, help="folder with NAME.tif and NAME_gt.tif pairs")
    parser.add_argument("--detector", required=True, choices=DETECTORS)
    parser.add_argument("--model", nargs="+", default=[], help="FERS model sets (.spectral.onnx files); each scene "
                        "gets the one reading most of its bands, as the plugin chooses; default: the shipped sets")
    parser.add_argument("--fusion", choices=FUSIONS, help="override the models' fusion rule")
    parser.add_argument("--json", help="also write the results as JSON to this file")
    args = parser.parse_args(argv)
    results = evaluate(args.detector, args.scenes, args.model, args.fusion)
    print(format_table(args.detector, results))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(to_json(args.detector, results), handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
