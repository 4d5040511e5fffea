"""The README's figure: a real scene, its RX map and its FERS map side by side, with the ground truth.

    .venv/bin/python -m docs.make_figure [--scene ../shared/data/eval/hydice_urban.tif] [--out docs/figure.png]

The scene comes from ../shared/data (not part of the repository); only the PNG is committed.
"""
import argparse
import os
import sys
import tempfile

import numpy as np
from osgeo import gdal

from fers_qgis.core.detection import detect_rx
from fers_qgis.core.enhancement import detect_fers
from fers_qgis.core.metrics import roc_auc
from fers_qgis.core.onnx_runtime import shipped_model_for
from fers_qgis.core.quicklook import colourise
from fers_qgis.core.raster import describe_raster

GAP = 8


def false_colour(cube_bhw: np.ndarray) -> np.ndarray:
    """RGB from three bands spread over the spectrum, each stretched between its 2nd and 98th percentiles."""
    bands = cube_bhw.shape[0]
    rgb = []
    for index in (int(bands * 0.55), int(bands * 0.3), int(bands * 0.1)):
        band = cube_bhw[index].astype(np.float64)
        low, high = np.percentile(band, [2, 98])
        rgb.append(np.clip((band - low) / max(high - low, 1e-12), 0, 1) * 255)
    return np.stack(rgb, axis=-1).astype(np.uint8)


def outline(truth_hw: np.ndarray) -> np.ndarray:
    """Pixels on the border of the ground-truth regions."""
    padded = np.pad(truth_hw, 1)
    inner = padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return truth_hw & ~inner


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", default=os.path.join("..", "shared", "data", "eval", "hydice_urban.tif"))
    parser.add_argument("--out", default=os.path.join("docs", "figure.png"))
    args = parser.parse_args(argv)
    cube = gdal.Open(args.scene).ReadAsArray()
    truth = gdal.Open(args.scene[:-4] + "_gt.tif").ReadAsArray() == 1
    panels = [false_colour(cube)]
    with tempfile.TemporaryDirectory() as folder:
        for name, run in (("rx", lambda out: detect_rx(args.scene, out)),
                          ("fers", lambda out: detect_fers(args.scene, out, shipped_model_for(describe_raster(args.scene).band_count)))):
            output = os.path.join(folder, f"{name}.tif")
            run(output)
            scores = gdal.Open(output).ReadAsArray().astype(np.float64)
            print(f"{name}: AUC {roc_auc(scores, truth):.4f}")
            panels.append(colourise(scores, np.ones_like(truth))[..., :3])
    edge = outline(truth)
    for panel in panels:
        panel[edge] = (0, 255, 255)
    height = panels[0].shape[0]
    spacer = np.full((height, GAP, 3), 255, dtype=np.uint8)
    figure = np.concatenate([part for panel in panels for part in (panel, spacer)][:-1], axis=1)
    figure = figure.repeat(2, axis=0).repeat(2, axis=1)  # small scenes: twice the size, pixels kept sharp
    memory = gdal.GetDriverByName("MEM").Create("", figure.shape[1], figure.shape[0], 3, gdal.GDT_Byte)
    for band in range(3):
        memory.GetRasterBand(band + 1).WriteArray(figure[..., band])
    gdal.GetDriverByName("PNG").CreateCopy(args.out, memory)
    print(f"wrote {args.out}: scene (false colour) | RX | FERS, ground truth outlined in cyan")
    return 0


if __name__ == "__main__":
    sys.exit(main())
