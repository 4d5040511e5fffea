"""FERS inference in PyTorch, a whole scene in memory: the published way of running the method.

It is the reference the plugin's ONNX pipeline (``fers_qgis.core.enhancement``) is checked against on whole scenes,
and the torch peer of ``make bench``. It shares only definitions with the core (band handling, normalisation,
the spatial tile grid and its blending weights); the computation is its own: whole-image spectral branch, tiles
run as one batch, RX by a float64 pseudo-inverse.

    python -m training.inference RUN SCENE.tif OUT.npy [--detector fers]
"""
import argparse
import sys
from typing import Optional, Sequence

import numpy as np
import torch
from osgeo import gdal

from fers_qgis.core.tiling import blend_window, reflect_padding, tile_starts
from fers_qgis.core.raster import describe_raster
from fers_qgis.core.spectral import NORMALISATION_SCALE, MinMaxNormaliser, band_matrix, to_model_bands

from .export import FUSION, load_run

DETECTORS = ("fers", "fers-spectral", "fers-spatial")


def model_input(cube_bhw: np.ndarray, valid_hw: np.ndarray, bands: int, band_mode: str,
                wavelengths_nm: Optional[Sequence[Optional[float]]] = None,
                scale: float = NORMALISATION_SCALE, normalisation: str = "minmax",
                model_wavelengths_nm: Sequence[float] = ()) -> np.ndarray:
    """x (B, H, W) float32: the model bands, normalised over the scene's valid pixels, invalid pixels holding
    the normalised mean spectrum."""
    matrix = band_matrix(cube_bhw.shape[0], bands, band_mode, wavelengths_nm, model_wavelengths_nm)
    values_bhw = to_model_bands(cube_bhw.astype(np.float64), matrix)
    valid_values = values_bhw[:, valid_hw]
    normaliser = MinMaxNormaliser.fit(valid_values, scale, normalisation)
    x_bhw = normaliser.apply(values_bhw)
    x_bhw[:, ~valid_hw] = normaliser.apply(valid_values.mean(axis=1))[:, None]
    return x_bhw.astype(np.float32)


@torch.no_grad()
def spectral_features(enhancer: torch.nn.Module, x_bhw: np.ndarray) -> np.ndarray:
    """spe_f of the whole image in one forward pass."""
    return enhancer(torch.from_numpy(x_bhw)[None])[0].double().numpy()


@torch.no_grad()
def spatial_features(student: torch.nn.Module, x_bhw: np.ndarray, tile: int, batch: int = 16) -> np.ndarray:
    """spa_f: the student on the tile grid (stride 3/4 tile, the last tile flush with the edge; short axes
    reflect-padded, centred, up to the tile), tiles blended with their sin^2 weights."""
    bands, height, width = x_bhw.shape
    pad_rows, pad_cols = reflect_padding(height, tile), reflect_padding(width, tile)
    padded = np.pad(x_bhw, ((0, 0), pad_rows, pad_cols), mode="reflect")
    weights = np.outer(blend_window(tile), blend_window(tile))
    weights = weights[pad_rows[0]:tile - pad_rows[1], pad_cols[0]:tile - pad_cols[1]]
    corners = [(row, col) for row in tile_starts(height, tile) for col in tile_starts(width, tile)]
    total = np.zeros((bands, height, width))
    weight_sum = np.zeros((height, width))
    for first in range(0, len(corners), batch):
        chunk = corners[first:first + batch]
        tiles = np.stack([padded[:, row:row + tile, col:col + tile] for row, col in chunk])
        features = student(torch.from_numpy(np.ascontiguousarray(tiles))).double().numpy()
        for (row, col), tile_features in zip(chunk, features):
            inside = tile_features[:, pad_rows[0]:tile - pad_rows[1], pad_cols[0]:tile - pad_cols[1]]
            rows, cols = slice(row, row + inside.shape[1]), slice(col, col + inside.shape[2])
            total[:, rows, cols] += inside * weights
            weight_sum[rows, cols] += weights
    return total / weight_sum


def rx_scores(cube_bhw: np.ndarray, valid_hw: np.ndarray) -> np.ndarray:
    """Global RX over the valid pixels with torch's float64 pseudo-inverse; invalid pixels NaN."""
    pixels = torch.from_numpy(cube_bhw[:, valid_hw].T.astype(np.float64))
    centred = pixels - pixels.mean(dim=0)
    inverse = torch.linalg.pinv(centred.T @ centred / (pixels.shape[0] - 1), hermitian=True)
    scores = np.full(valid_hw.shape, np.nan)
    scores[valid_hw] = torch.einsum("nc,cd,nd->n", centred, inverse, centred).numpy()
    return scores


def _scaled(scores: np.ndarray) -> np.ndarray:
    low, high = np.nanmin(scores), np.nanmax(scores)
    return (scores - low) / (high - low) if high > low else np.zeros_like(scores)


def _as_stored(cube_bhw: np.ndarray) -> np.ndarray:
    """The core writes the enhanced cubes as float32 and scores what it reads back: do the same."""
    return cube_bhw.astype(np.float32).astype(np.float64)


def fers_scores(cube_bhw: np.ndarray, valid_hw: np.ndarray, enhancer: torch.nn.Module, student: torch.nn.Module,
                bands: int, band_mode: str, tile: int, detector: str = "fers",
                wavelengths_nm: Optional[Sequence[Optional[float]]] = None, normalisation: str = "minmax",
                model_wavelengths_nm: Sequence[float] = (), fusion: str = FUSION) -> np.ndarray:
    """Anomaly scores of a scene by the ``fusion`` rule (exported models': FUSION): the product of the scaled RX
    maps of x + spa_f and x + spe_f ("product"), that times the scaled RX map of x ("product-rx"), or RX on
    x + spa_f + spe_f ("sum"); or RX on one branch's cube for the single-branch detectors."""
    x_bhw = model_input(cube_bhw, valid_hw, bands, band_mode, wavelengths_nm, normalisation=normalisation,
                        model_wavelengths_nm=model_wavelengths_nm)
    x = x_bhw.astype(np.float64)
    if detector == "fers-spectral":
        return rx_scores(_as_stored(x + spectral_features(enhancer, x_bhw)), valid_hw)
    spatial = spatial_features(student, x_bhw, tile)
    if detector == "fers-spatial":
        return rx_scores(_as_stored(x + spatial), valid_hw)
    spectral = spectral_features(enhancer, x_bhw)
    if fusion in ("product", "product-rx"):
        scores = (_scaled(rx_scores(_as_stored(x + spatial), valid_hw))
                  * _scaled(rx_scores(_as_stored(x + spectral), valid_hw)))
        return scores * _scaled(rx_scores(_as_stored(x), valid_hw)) if fusion == "product-rx" else scores
    return rx_scores(_as_stored(x + spatial + spectral), valid_hw)


def scene_scores(run: str, scene_path: str, detector: str = "fers") -> np.ndarray:
    """Read a whole scene and score it with a trained run; pixels with nodata, NaN or Inf in a band the model
    uses are invalid (NaN scores), as in the plugin."""
    config, enhancer, student = load_run(run)
    bands, band_mode = int(config["bands"]), str(config["band_mode"])
    info = describe_raster(scene_path)
    dataset = gdal.Open(scene_path)
    cube_bhw = dataset.ReadAsArray().astype(np.float64).reshape(info.band_count, info.height, info.width)
    normalisation, model_wavelengths = str(config.get("normalisation", "minmax")), config.get("wavelengths_nm", [])
    used = np.any(band_matrix(info.band_count, bands, band_mode, info.wavelengths_nm, model_wavelengths) != 0, axis=0)
    valid_hw = np.isfinite(cube_bhw[used]).all(axis=0)
    for plane, nodata, in_use in zip(cube_bhw, info.nodata, used):
        if nodata is not None and in_use:
            valid_hw &= plane != nodata
    cube_bhw[:, ~valid_hw] = 0.0
    return fers_scores(cube_bhw, valid_hw, enhancer, student, bands, band_mode, int(config["tile_size"]), detector,
                       info.wavelengths_nm, normalisation, model_wavelengths)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="stage-2 (student) run folder")
    parser.add_argument("scene", help="raster to score")
    parser.add_argument("out", help=".npy file for the scores")
    parser.add_argument("--detector", choices=DETECTORS, default="fers")
    args = parser.parse_args(argv)
    np.save(args.out, scene_scores(args.run, args.scene, args.detector))
    return 0


if __name__ == "__main__":
    sys.exit(main())
