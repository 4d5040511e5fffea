"""Synthetic-implant benchmark: many random anomaly implants into real scenes, AUC with confidence intervals.

Seven labelled scenes cannot separate detectors that differ by less than about 0.01 AUC. Here each draw takes a
scene, mixes foreign spectra (pixels of another scene, resampled to this scene's bands and rescaled to its
brightness) into a few small blobs at sub-pixel to moderate fractions, and scores the result with every detector
on the same draws, so that paired differences have tight intervals. Implant into ``eval/`` scenes to evaluate and
into ``train/`` scenes for validation, never the other way round.

``python -m training.implant_benchmark --scenes DIR --detectors rx fers [--draws 40] [--seed 0] [--json OUT]``
"""
import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
from osgeo import gdal

from fers_qgis.core.metrics import roc_auc
from fers_qgis.core.model_format import FUSIONS
from fers_qgis.core.output import OUTPUT_NODATA
from fers_qgis.core.raster import gdal_errors_as_exceptions
from fers_qgis.core.spectral import band_matrix, to_model_bands
from training.evaluate import DETECTORS, make_detector, read_first_band


@dataclass
class Implant:
    cube_bhw: np.ndarray
    labels_hw: np.ndarray


def scene_paths(folder: str) -> List[str]:
    """Every cube in ``folder`` (ground-truth rasters excluded)."""
    return sorted(os.path.join(folder, name) for name in os.listdir(folder)
                  if name.endswith(".tif") and not name.endswith("_gt.tif"))


def read_cube(path: str) -> np.ndarray:
    with gdal_errors_as_exceptions():
        dataset = gdal.Open(path)
        return dataset.ReadAsArray().astype(np.float64).reshape(dataset.RasterCount, dataset.RasterYSize, -1)


def implant(cube_bhw: np.ndarray, donor_bhw: np.ndarray, rng: np.random.Generator, blobs: int = 4,
            fraction_range=(0.1, 0.5), known_anomalies_hw: np.ndarray = None) -> Implant:
    """Mix donor spectra into ``blobs`` random blobs of 1 to 9 pixels; labels mark every changed pixel.

    Pixels already labelled anomalous in the scene (``known_anomalies_hw``) stay labelled, so the implanted
    ground truth remains complete.
    """
    bands, rows, columns = cube_bhw.shape
    donor = to_model_bands(donor_bhw, band_matrix(donor_bhw.shape[0], bands, "resample"))
    donor_pixels = donor.reshape(bands, -1)
    # Rescale donors to the scene's brightness so that the implant differs in spectral shape, not in units.
    donor_pixels = donor_pixels / (np.abs(donor_pixels).mean() + 1e-12) * np.abs(cube_bhw).mean()
    result = cube_bhw.copy()
    labels = np.zeros((rows, columns), dtype=bool) if known_anomalies_hw is None else known_anomalies_hw.copy()
    for _ in range(blobs):
        spectrum = donor_pixels[:, rng.integers(donor_pixels.shape[1])]
        size = int(rng.integers(1, 4))
        top, left = int(rng.integers(0, rows - size + 1)), int(rng.integers(0, columns - size + 1))
        blob = np.zeros((rows, columns), dtype=bool)
        blob[top:top + size, left:left + size] = rng.random((size, size)) < 0.8
        blob[top + size // 2, left + size // 2] = True
        fraction = rng.uniform(*fraction_range)
        result[:, blob] = (1 - fraction) * result[:, blob] + fraction * spectrum[:, None]
        labels |= blob
    return Implant(result, labels)


def write_like(path: str, template_path: str, cube_bhw: np.ndarray) -> None:
    """Write ``cube_bhw`` as Float32 GeoTIFF with the template's band metadata (wavelengths matter to models)."""
    with gdal_errors_as_exceptions():
        template = gdal.Open(template_path)
        bands, rows, columns = cube_bhw.shape
        dataset = gdal.GetDriverByName("GTiff").Create(path, columns, rows, bands, gdal.GDT_Float32)
        dataset.SetGeoTransform(template.GetGeoTransform())
        for index in range(bands):
            band = dataset.GetRasterBand(index + 1)
            band.WriteArray(cube_bhw[index])
            band.SetMetadata(template.GetRasterBand(index + 1).GetMetadata())
        dataset = None


@dataclass
class BenchmarkResult:
    auc: Dict[str, List[float]]  # per detector, one AUC per draw
    hosts: List[str]  # the scene each draw implanted into: hosts differ in difficulty, so report them apart


def run(folder: str, detectors: Sequence[str], draws: int, seed: int, models: Sequence[str] = (),
        hosts: Sequence[str] = (), strengths: Sequence[float] = (), fusion: Optional[str] = None
        ) -> BenchmarkResult:
    """AUC of each detector on the same ``draws`` implanted scenes; implants go into the ``hosts`` scenes (by
    name; default all), donors are any other scene of the folder. ``strengths``: draw k mixes its implants at
    the fraction strengths[k % len] (sub-pixel targets of several strengths), else at 10-50%."""
    paths = scene_paths(folder)
    if len(paths) < 2:
        raise SystemExit(f"{folder} needs at least two scenes (one donates the foreign spectra).")
    names = [os.path.basename(path)[:-4] for path in paths]
    unknown = sorted(set(hosts) - set(names))
    if unknown:
        raise SystemExit(f"Host scenes {unknown} are not in {folder}.")
    host_indices = [index for index, name in enumerate(names) if not hosts or name in hosts]
    rng = np.random.default_rng(seed)
    results = BenchmarkResult({name: [] for name in detectors}, [])
    runners = {name: make_detector(name, models, fusion) for name in detectors}
    cubes = {path: read_cube(path) for path in paths}
    with tempfile.TemporaryDirectory(prefix="fers-implant-") as workdir:
        for draw in range(draws):
            host = host_indices[rng.integers(len(host_indices))]
            results.hosts.append(names[host])
            donor = rng.choice([index for index in range(len(paths)) if index != host])
            truth_path = paths[host][:-4] + "_gt.tif"
            known = read_first_band(truth_path) == 1 if os.path.exists(truth_path) else None
            fractions = (strengths[draw % len(strengths)],) * 2 if strengths else (0.1, 0.5)
            sample = implant(cubes[paths[host]], cubes[paths[donor]], rng, fraction_range=fractions,
                             known_anomalies_hw=known)
            scene_path = os.path.join(workdir, f"draw{draw}.tif")
            write_like(scene_path, paths[host], sample.cube_bhw)
            for name in detectors:
                output = os.path.join(workdir, f"draw{draw}_{name}.tif")
                runners[name](scene_path, output)
                scores = read_first_band(output).astype(np.float64)
                valid = scores != OUTPUT_NODATA
                results.auc[name].append(roc_auc(scores[valid], sample.labels_hw[valid]))
    return results


def half_width(values: np.ndarray) -> float:
    """Half the normal-approximation 95% confidence interval of the mean (NaN for a single value)."""
    return float(1.96 * values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else float("nan")


def interval(values: Sequence[float]) -> str:
    """Mean with a normal-approximation 95% confidence interval."""
    values = np.asarray(values)
    return f"{values.mean():.4f} +- {half_width(values):.4f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", required=True)
    parser.add_argument("--detectors", nargs="+", required=True, choices=DETECTORS)
    parser.add_argument("--model", nargs="+", default=[], help="FERS model sets (.spectral.onnx), chosen per scene "
                        "as the plugin chooses; default: the shipped sets")
    parser.add_argument("--draws", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hosts", default="", help="comma-separated scene names to implant into (default all)")
    parser.add_argument("--strengths", default="", help="comma-separated mixing fractions, one per draw in turn "
                        "(default: each implant 10-50%%)")
    parser.add_argument("--fusion", choices=FUSIONS, help="override the models' fusion rule")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    strengths = [float(value) for value in args.strengths.split(",") if value]
    results = run(args.scenes, args.detectors, args.draws, args.seed, args.model,
                  [name for name in args.hosts.split(",") if name], strengths, args.fusion)
    print(f"{args.draws} implant draws into {args.scenes} (seed {args.seed}), {time.perf_counter() - started:.0f} s")
    auc = {name: np.asarray(values) for name, values in results.auc.items()}
    for name in args.detectors:
        print(f"  {name:<16} AUC {interval(auc[name])}")
    baseline = args.detectors[0]
    for name in args.detectors[1:]:
        print(f"  {name} - {baseline}: {interval(auc[name] - auc[baseline])} (paired)")
    groups = [(f"strength {strength:g}", np.arange(args.draws) % len(strengths) == index)
              for index, strength in enumerate(strengths)]
    hosts = np.asarray(results.hosts)
    if len(set(results.hosts)) > 1:
        groups += [(f"host {host} ({np.sum(hosts == host)} draws)", hosts == host) for host in sorted(set(hosts))]
    for label, chosen in groups:
        print(f"  {label}: " + ", ".join(f"{name} {interval(auc[name][chosen])}" for name in args.detectors))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"draws": args.draws, "seed": args.seed, "strengths": strengths, "hosts": results.hosts,
                       "auc": results.auc}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
