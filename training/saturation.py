"""How much a few saturated pixels cost a detector: ``python -m training.saturation --scenes DIR --detector fers``.

Each labelled scene is copied with ``--pixels`` background pixels (drawn with ``--seed``, never anomalies) set to
the data type's largest value in every band (65535 in float scenes), as a saturated detector element leaves them,
and the detector is evaluated on the originals and on the copies exactly as ``training.evaluate`` does.
"""
import argparse
import os
import shutil
import sys
import tempfile

import numpy as np
from osgeo import gdal

from fers_qgis.core.raster import gdal_errors_as_exceptions

from .evaluate import DETECTORS, evaluate, labelled_scenes, read_first_band

FLOAT_SATURATION = 65535.0


def write_saturated_copy(source: str, target: str, labels_hw: np.ndarray, pixels: int, seed: int) -> None:
    """Copy ``source`` to ``target`` with ``pixels`` random background pixels saturated in every band."""
    with gdal_errors_as_exceptions():
        dataset = gdal.Open(source)
        cube_bhw = dataset.ReadAsArray().reshape(dataset.RasterCount, dataset.RasterYSize, dataset.RasterXSize)
        background = np.argwhere(labels_hw == 0)
        chosen = background[np.random.default_rng(seed).choice(len(background), pixels, replace=False)]
        value = np.iinfo(cube_bhw.dtype).max if np.issubdtype(cube_bhw.dtype, np.integer) else FLOAT_SATURATION
        cube_bhw[:, chosen[:, 0], chosen[:, 1]] = value
        copy = gdal.GetDriverByName("GTiff").CreateCopy(target, dataset)
        for index in range(copy.RasterCount):
            copy.GetRasterBand(index + 1).WriteArray(cube_bhw[index])
        copy = None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", required=True, help="folder with NAME.tif and NAME_gt.tif pairs")
    parser.add_argument("--detector", required=True, choices=DETECTORS)
    parser.add_argument("--model", nargs="+", default=[], help="FERS model sets, as for training.evaluate")
    parser.add_argument("--pixels", type=int, default=6, help="saturated pixels per scene")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fers-saturated-") as folder:
        for name in labelled_scenes(args.scenes):
            labels = os.path.join(args.scenes, f"{name}_gt.tif")
            shutil.copy(labels, folder)
            write_saturated_copy(os.path.join(args.scenes, f"{name}.tif"), os.path.join(folder, f"{name}.tif"),
                                 read_first_band(labels), args.pixels, args.seed)
        clean = evaluate(args.detector, args.scenes, args.model)
        saturated = evaluate(args.detector, folder, args.model)
    print(f"detector: {args.detector}, {args.pixels} saturated pixels per scene (seed {args.seed})")
    print(f"{'scene':<18}  {'clean':>7}  {'saturated':>9}  {'change':>7}")
    for before, after in zip(clean, saturated):
        print(f"{before.name:<18}  {before.auc:7.4f}  {after.auc:9.4f}  {after.auc - before.auc:+7.4f}")
    means = [float(np.mean([result.auc for result in results])) for results in (clean, saturated)]
    print(f"{'mean':<18}  {means[0]:7.4f}  {means[1]:9.4f}  {means[1] - means[0]:+7.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
