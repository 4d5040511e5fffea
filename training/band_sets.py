"""What feeding a model by wavelength does on other band sets:
``python -m training.band_sets --model M.spectral.onnx --wavelengths-from SCENE.tif SCENES...``.

An experiment, not a way to label models: a copy of the model set (in a temporary folder) records the wavelengths
of the first B bands of ``--wavelengths-from`` (the sensor the model is supposed to have been trained on), and each
scene is scored by the original (its band mode) and by the copy (by wavelength). Prints which wavelengths each rule
feeds, whether the scores are identical, their correlation, and the AUC where a NAME_gt.tif lies beside the scene.
"""
import argparse
import os
import sys
import tempfile
from typing import Sequence

import numpy as np
import onnx

from fers_qgis.core.enhancement import detect_fers
from fers_qgis.core.errors import InputError
from fers_qgis.core.metrics import roc_auc
from fers_qgis.core.onnx_runtime import load_model_set
from fers_qgis.core.raster import describe_raster
from fers_qgis.core.spectral import band_matrix, known_wavelengths

from .evaluate import read_first_band

COPY_NAME = "by_wavelength"


def copy_with_wavelengths(spectral_path: str, wavelengths_nm: Sequence[float], folder: str) -> str:
    """Both files of a model set, copied into ``folder`` with ``fers_wavelengths_nm`` set; the copy's spectral path."""
    model_set = load_model_set(spectral_path)
    for source, branch in ((spectral_path, "spectral"), (model_set.spatial_path, "spatial")):
        model = onnx.load(source)
        for prop in [prop for prop in model.metadata_props if prop.key == "fers_wavelengths_nm"]:
            model.metadata_props.remove(prop)
        for prop in model.metadata_props:
            if prop.key == "fers_companion" and prop.value:
                prop.value = f"{COPY_NAME}.spatial.onnx"
        entry = model.metadata_props.add()
        entry.key, entry.value = "fers_wavelengths_nm", str([float(w) for w in wavelengths_nm])
        onnx.save(model, os.path.join(folder, f"{COPY_NAME}.{branch}.onnx"))
    return os.path.join(folder, f"{COPY_NAME}.spectral.onnx")


def fed_wavelengths(path: str, bands: int, band_mode: str, model_wavelengths_nm: Sequence[float] = ()) -> str:
    """The wavelength span a rule feeds the model from this raster, in words."""
    info = describe_raster(path)
    source = known_wavelengths(info.wavelengths_nm)
    if source is None:
        return "no wavelengths"
    matrix = band_matrix(info.band_count, bands, band_mode, info.wavelengths_nm, model_wavelengths_nm)
    fed = matrix @ source
    interpolated = not np.all((matrix == 0) | (matrix == 1))
    return f"{fed.min():.0f}-{fed.max():.0f} nm" + (" (interpolated)" if interpolated else "")


def scores(scene: str, model: str, folder: str) -> np.ndarray:
    output = os.path.join(folder, "scores.tif")
    detect_fers(scene, output, model)
    values = read_first_band(output).astype(np.float64).ravel()
    os.remove(output)
    return values


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a FERS model set (.spectral.onnx)")
    parser.add_argument("--wavelengths-from", required=True, help="a raster of the sensor the model stands for")
    parser.add_argument("scenes", nargs="+", help="rasters to score")
    args = parser.parse_args(argv)
    metadata = load_model_set(args.model).metadata
    sensor = known_wavelengths(describe_raster(args.wavelengths_from).wavelengths_nm)
    if sensor is None or sensor.size < metadata.bands:
        raise SystemExit(f"{args.wavelengths_from} does not give {metadata.bands} band wavelengths.")
    wavelengths = sensor[:metadata.bands]
    print(f"model bands as {os.path.basename(args.wavelengths_from)}'s first {metadata.bands}: "
          f"{wavelengths.min():.1f}-{wavelengths.max():.1f} nm")
    with tempfile.TemporaryDirectory(prefix="fers-band-sets-") as folder:
        by_wavelength = copy_with_wavelengths(args.model, wavelengths, folder)
        for scene in args.scenes:
            name = os.path.splitext(os.path.basename(scene))[0]
            line = f"{name}: {metadata.band_mode} {fed_wavelengths(scene, metadata.bands, metadata.band_mode)}"
            try:
                line += f"; by wavelength {fed_wavelengths(scene, metadata.bands, 'first', wavelengths)}"
                before, after = scores(scene, args.model, folder), scores(scene, by_wavelength, folder)
            except InputError as error:
                print(f"{line}; by wavelength refused: {error}")
                continue
            line += (f"; scores identical: {np.array_equal(before, after)}, "
                     f"correlation {np.corrcoef(before, after)[0, 1]:.4f}")
            labels_path = os.path.splitext(scene)[0] + "_gt.tif"
            if os.path.exists(labels_path):
                labels = read_first_band(labels_path).ravel() != 0
                line += f"; AUC {roc_auc(before, labels):.4f} -> {roc_auc(after, labels):.4f}"
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
