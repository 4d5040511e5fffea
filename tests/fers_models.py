"""Tiny FERS-shaped model sets exported to ONNX in tests, and in-memory references of what the plugin computes.

The branches have the structure that matters to tiling: the spectral one reflect-pads, runs a local operator
(receptive field 5 x 5) and crops; the spatial one pools a fixed-size tile onto a 4 x 4 grid and applies a global
channel gate. Needs torch and onnx (tests import this module after ``pytest.importorskip("torch")``).
"""
import os
import warnings

import numpy as np
import onnx
import torch
from torch import nn
from torch.nn import functional

from fers_qgis.core.model_format import ModelMetadata

TILE = 64
HALO = 4


class TinySpectralBranch(nn.Module):
    """(N, B, H, W) -> (N, B, H, W): reflect pad 4, 1x1 B->8, two 3x3 convs, crop, 1x1 back to B, ReLU."""

    def __init__(self, bands: int):
        super().__init__()
        self.stem = nn.Conv2d(bands, 8, 1, bias=False)
        self.local1 = nn.Conv2d(8, 8, 3, padding=1)
        self.local2 = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Conv2d(8, bands, 1)

    def forward(self, cube):
        padded = functional.pad(cube, (HALO, HALO, HALO, HALO), mode="reflect")
        features = torch.relu(self.local2(torch.relu(self.local1(self.stem(padded)))))
        features = features[:, :, HALO:-HALO, HALO:-HALO]
        return torch.relu(self.head(features * 10.0))


class TinySpatialBranch(nn.Module):
    """(N, B, T, T) -> (N, B, T, T): 1x1 conv, 4 x 4 average-pool grid upsampled back, SE-like channel gate."""

    def __init__(self, bands: int):
        super().__init__()
        self.reduce = nn.Conv2d(bands, 8, 1)
        self.expand = nn.Conv2d(8, bands, 1)
        self.gate = nn.Conv2d(bands, bands, 1)

    def forward(self, cube):
        size = cube.shape[-2:]
        grid = functional.adaptive_avg_pool2d(torch.relu(self.reduce(cube * 10.0)), 4)
        context = functional.interpolate(grid, size=size, mode="bilinear", align_corners=False)
        features = torch.relu(self.expand(context))
        gate = torch.sigmoid(self.gate(features.mean(dim=(2, 3), keepdim=True)))
        return features * gate


def _export(module, example, path, dynamic_axes, props=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), path, input_names=["cube"], output_names=["features"],
                          dynamic_axes=dynamic_axes, dynamo=False)
    if props is not None:
        model = onnx.load(path)
        for key, value in props.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(model, path)
    return path


class ExportedModelSet:
    """A model set in a folder: the torch modules (references) and the two ONNX files."""

    def __init__(self, folder, bands=6, band_mode="first", fusion="sum", seed=0, name="tiny", normalisation="minmax",
                 wavelengths_nm=()):
        torch.manual_seed(seed)
        self.bands = bands
        self.spectral = TinySpectralBranch(bands).eval()
        self.spatial = TinySpatialBranch(bands).eval()
        common = dict(bands=bands, band_mode=band_mode, normalisation_scale=0.1, halo=HALO, fusion=fusion,
                      normalisation=normalisation, wavelengths_nm=tuple(wavelengths_nm))
        self.spatial_path = os.path.join(str(folder), f"{name}.spatial.onnx")
        self.spectral_path = os.path.join(str(folder), f"{name}.spectral.onnx")
        spatial_meta = ModelMetadata(branch="spatial", tile_size=TILE, **common)
        spectral_meta = ModelMetadata(branch="spectral", tile_size=0, companion=os.path.basename(self.spatial_path),
                                      **common)
        _export(self.spatial, torch.zeros(1, bands, TILE, TILE), self.spatial_path,
                {"cube": {0: "n"}, "features": {0: "n"}}, spatial_meta.to_metadata_props())
        _export(self.spectral, torch.zeros(1, bands, 16, 16), self.spectral_path,
                {"cube": {0: "n", 2: "h", 3: "w"}, "features": {0: "n", 2: "h", 3: "w"}},
                spectral_meta.to_metadata_props())

    def spectral_reference(self, x_bhw: np.ndarray) -> np.ndarray:
        """spe_f of the whole image in one torch run."""
        with torch.no_grad():
            return self.spectral(torch.from_numpy(x_bhw.astype(np.float32))[None])[0].double().numpy()

    def spatial_reference(self, x_bhw: np.ndarray) -> np.ndarray:
        """spa_f by the documented tiling rule, in memory (the training package's torch pipeline)."""
        from training.inference import spatial_features

        return spatial_features(self.spatial, x_bhw.astype(np.float32), TILE)


def normalised_first_bands(cube_bhw: np.ndarray, bands: int, valid_hw: np.ndarray, scale: float = 0.1) -> np.ndarray:
    """The model input x in memory: first B bands, scene min-max over valid pixels to [-scale, scale], invalid
    pixels filled with the normalised mean spectrum of the valid ones."""
    selected = cube_bhw[:bands].astype(np.float64)
    values = selected[:, valid_hw]
    low, high = values.min(), values.max()
    x = ((selected - low) / (high - low + 1e-12) * 2 - 1) * scale
    x[:, ~valid_hw] = x[:, valid_hw].mean(axis=1)[:, None]
    return x.astype(np.float32)


def reference_rx(cube_bhw: np.ndarray, valid_hw: np.ndarray) -> np.ndarray:
    """Global RX with numpy's pseudo-inverse over the valid pixels; invalid pixels NaN."""
    pixels = cube_bhw[:, valid_hw].T.astype(np.float64)
    centred = pixels - pixels.mean(axis=0)
    inverse = np.linalg.pinv(np.cov(pixels, rowvar=False))
    scores = np.full(valid_hw.shape, np.nan)
    scores[valid_hw] = np.einsum("nc,cd,nd->n", centred, inverse, centred)
    return scores
