"""Synthetic hyperspectral scenes with implanted anomalies, for the demo, tests and benchmarks.

A scene is a linear mixture of smooth random endmember spectra with spatially smooth abundances plus sensor
noise; anomalies are small blobs where a foreign spectrum is mixed into the background at sub-pixel to full
fractions. It is documented as synthetic wherever it is used: real scenes live outside the repository.
``python -m training.synthetic OUT.tif [--size 200x160] [--bands 120]`` writes one with ``OUT_gt.tif`` beside it.
"""
import argparse
import os
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
from osgeo import gdal, osr

from fers_qgis.core.raster import gdal_errors_as_exceptions

DEMO_EPSG = 32611  # UTM zone 11N, where many AVIRIS flight lines lie; 15 m pixels
DEMO_ORIGIN = (500000.0, 3650000.0)
DEMO_PIXEL_SIZE = 15.0


@dataclass
class SyntheticScene:
    cube_bhw: np.ndarray      # (bands, rows, columns), float32 reflectance x 10000
    anomalies_hw: np.ndarray  # (rows, columns) uint8, 1 = implanted anomaly
    wavelengths_nm: np.ndarray


def smooth_spectra(count: int, wavelengths_nm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(count, bands) positive spectra built from a few broad Gaussian features, like surface reflectances."""
    spectra = np.full((count, wavelengths_nm.size), 0.05)
    for spectrum in spectra:
        for _ in range(rng.integers(3, 7)):
            centre = rng.uniform(wavelengths_nm[0], wavelengths_nm[-1])
            width = rng.uniform(60, 400)
            spectrum += rng.uniform(0.05, 0.4) * np.exp(-0.5 * ((wavelengths_nm - centre) / width) ** 2)
    return spectra


def smooth_field(shape: Tuple[int, int], scale: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian random field with correlation length ``scale`` pixels (FFT low-pass of white noise)."""
    noise = rng.normal(size=shape)
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    spectrum = np.fft.rfft2(noise) * np.exp(-2 * (np.pi * scale) ** 2 * (fx ** 2 + fy ** 2))
    field = np.fft.irfft2(spectrum, s=shape)
    return (field - field.mean()) / (field.std() + 1e-12)


def make_scene(rows: int = 160, columns: int = 200, bands: int = 120, anomalies: int = 12, seed: int = 0,
               noise_fraction: float = 0.01) -> SyntheticScene:
    """Mix 8 endmembers with smooth abundances, add noise, implant ``anomalies`` blobs of foreign spectra."""
    rng = np.random.default_rng(seed)
    wavelengths = np.linspace(400.0, 2500.0, bands)
    endmembers = smooth_spectra(8, wavelengths, rng)
    logits = np.stack([smooth_field((rows, columns), rng.uniform(6, 20), rng) * 2.0 for _ in endmembers])
    abundances = np.exp(logits) / np.exp(logits).sum(axis=0)
    cube = np.einsum("ehw,eb->bhw", abundances, endmembers)
    cube *= 1.0 + 0.1 * smooth_field((rows, columns), 30, rng)[None]  # illumination
    labels = np.zeros((rows, columns), dtype=np.uint8)
    foreign = smooth_spectra(anomalies, wavelengths, rng)
    for spectrum in foreign:
        radius = rng.uniform(0.6, 2.2)
        cy, cx = rng.uniform(3, rows - 3), rng.uniform(3, columns - 3)
        yy, xx = np.ogrid[:rows, :columns]
        blob = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2
        blob[int(cy), int(cx)] = True
        fraction = rng.uniform(0.02, 0.5)
        cube[:, blob] = (1 - fraction) * cube[:, blob] + fraction * spectrum[:, None]
        labels[blob] = 1
    cube += rng.normal(scale=noise_fraction * cube.mean(), size=cube.shape)
    return SyntheticScene((cube * 10000).astype(np.float32), labels, wavelengths)


def write_scene(scene: SyntheticScene, path: str, labels_path: Optional[str] = None,
                data_type: int = gdal.GDT_Float32) -> None:
    """Write the cube as a georeferenced GeoTIFF with band wavelengths, and optionally its ground truth."""
    bands, rows, columns = scene.cube_bhw.shape
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(DEMO_EPSG)
    geotransform = (DEMO_ORIGIN[0], DEMO_PIXEL_SIZE, 0.0, DEMO_ORIGIN[1], 0.0, -DEMO_PIXEL_SIZE)
    driver = gdal.GetDriverByName("GTiff")
    with gdal_errors_as_exceptions():
        dataset = driver.Create(path, columns, rows, bands, data_type, ["TILED=YES", "COMPRESS=DEFLATE"])
        dataset.SetGeoTransform(geotransform)
        dataset.SetProjection(srs.ExportToWkt())
        for index in range(bands):
            band = dataset.GetRasterBand(index + 1)
            band.WriteArray(scene.cube_bhw[index])
            band.SetDescription(f"{scene.wavelengths_nm[index]:.1f} nm")
            band.SetMetadata({"wavelength": f"{scene.wavelengths_nm[index]:.2f}", "wavelength_units": "nanometers"})
        dataset = None
        if labels_path:
            labels = driver.Create(labels_path, columns, rows, 1, gdal.GDT_Byte)
            labels.SetGeoTransform(geotransform)
            labels.SetProjection(srs.ExportToWkt())
            labels.GetRasterBand(1).WriteArray(scene.anomalies_hw)
            labels = None


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Write a synthetic hyperspectral scene with implanted anomalies.")
    parser.add_argument("output", help="GeoTIFF to write; NAME_gt.tif is written beside it")
    parser.add_argument("--size", default="200x160", help="columns x rows (default 200x160)")
    parser.add_argument("--bands", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    columns, rows = (int(value) for value in args.size.lower().split("x"))
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    labels_path = os.path.splitext(args.output)[0] + "_gt.tif"
    write_scene(make_scene(rows, columns, args.bands, seed=args.seed), args.output, labels_path)
    print(f"Wrote {args.output} ({columns} x {rows} pixels, {args.bands} bands, synthetic) and {labels_path}")


if __name__ == "__main__":
    main()
