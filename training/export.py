"""Export a trained model set to ONNX for the plugin.

    python -m training.export RUN --out resources/models/ --name NAME

RUN is a stage-2 run folder (it holds the spectral branch it was trained with, and the spatial student). Writes
NAME.spectral.onnx (any H x W, dynamic batch) and NAME.spatial.onnx (fixed tile size, dynamic batch), each carrying
``fers_qgis.core.model_format.ModelMetadata``: input "cube", output "features", both (N, B, H, W) float32.
The torch.export-based exporter is used: its graphs match torch to float rounding (checked by the tests).
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
from typing import Dict, Optional, Tuple

import onnx
import torch

from fers_qgis.core.model_format import INPUT_NAME, OUTPUT_NAME, ModelMetadata
from fers_qgis.core.spectral import NORMALISATION_SCALE

from .models.student import SpatialStudent
from .models.teacher import HALO, SpectralEnhancer
from .train import ENHANCER_FILE, RANDOM_TEACHER, STUDENT_FILE, read_config

OPSET = 18
MAX_SIDE = 1 << 15
# The product rule times plain RX for every band count: the product rule (published for 50 bands, the sum for
# more) beat the sum at 100 and 200, and product-rx beat the product rule on the pooled selection signal
# (held-out training hosts and small/, docs/RESULTS.md "The pooled selection signal").
FUSION = "product-rx"


def git_commit() -> str:
    """The repository's HEAD commit, or "" outside a git checkout."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def export_module(module: torch.nn.Module, example: torch.Tensor, path: str, dynamic_size: bool,
                  metadata: ModelMetadata) -> None:
    """Export with a dynamic batch (and dynamic H, W if asked), then attach the FERS metadata."""
    module = module.eval()
    dims = {0: torch.export.Dim("batch", min=1, max=4096)}
    if dynamic_size:
        dims.update({2: torch.export.Dim("height", min=2 * HALO + 1, max=MAX_SIDE),
                     3: torch.export.Dim("width", min=2 * HALO + 1, max=MAX_SIDE)})
    program = torch.onnx.export(module, (example,), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                dynamo=True, opset_version=OPSET, dynamic_shapes={"x": dims}, verbose=False)
    program.save(path)
    model = onnx.load(path)
    for key, value in metadata.to_metadata_props().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.doc_string = f"FERS {metadata.branch} branch, {metadata.bands} bands ({metadata.band_mode})"
    onnx.checker.check_model(model)
    onnx.save(model, path)


def training_summary(run: str, config: Dict[str, object]) -> Dict[str, object]:
    """What the metadata records about training: both stages' configs, data, final losses, commit."""
    summary: Dict[str, object] = {
        "student": {key: config[key] for key in ("epochs", "steps_per_epoch", "batch", "lr", "seed", "scenes",
                                                  "validation_scenes", "data", "teacher") if key in config},
        "git_commit": git_commit(),
        "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "synthetic_anomaly_validation": last_validation(run),
    }
    teacher = str(config.get("teacher", RANDOM_TEACHER))
    if teacher == RANDOM_TEACHER:
        summary["teacher"] = "untrained spectral enhancer (kaiming init, seeded)"
    else:
        try:
            teacher_config = read_config(teacher)
            summary["teacher"] = {key: teacher_config.get(key) for key in (
                "epochs", "steps_per_epoch", "batch", "lr", "seed", "scenes", "paste_kinds", "teacher_network")}
            summary["teacher"]["validation"] = last_validation(teacher)
        except ValueError:
            summary["teacher"] = teacher
    return summary


def last_validation(run: str) -> Dict[str, float]:
    """The validation entries of the run's last history record, if any."""
    path = os.path.join(run, "history.jsonl")
    if not os.path.exists(path):
        return {}
    with open(path) as handle:
        lines = [line for line in handle if line.strip()]
    if not lines:
        return {}
    return {key: value for key, value in json.loads(lines[-1]).items() if key.startswith("val_") or key == "epoch"}


def load_run(run: str) -> Tuple[Dict[str, object], SpectralEnhancer, SpatialStudent]:
    """A stage-2 run's config, spectral branch and spatial student, in eval mode."""
    config = read_config(run)
    if config.get("stage") != "student":
        raise ValueError(f"{run} is a {config.get('stage')} run: export a stage-2 (student) run, which holds both "
                         "branches.")
    bands = int(config["bands"])
    enhancer = SpectralEnhancer(bands)
    enhancer.load_state_dict(torch.load(os.path.join(run, ENHANCER_FILE), map_location="cpu"))
    student = SpatialStudent(bands)
    student.load_state_dict(torch.load(os.path.join(run, STUDENT_FILE), map_location="cpu"))
    return config, enhancer.eval(), student.eval()


def export_run(run: str, out: str, name: str, summary: Optional[Dict[str, object]] = None) -> Tuple[str, str]:
    """Write NAME.spectral.onnx and NAME.spatial.onnx into ``out``; returns their paths."""
    config, enhancer, student = load_run(run)
    bands, band_mode, tile = int(config["bands"]), str(config["band_mode"]), int(config["tile_size"])
    os.makedirs(out, exist_ok=True)
    spectral_path = os.path.join(out, f"{name}.spectral.onnx")
    spatial_path = os.path.join(out, f"{name}.spatial.onnx")
    training = summary if summary is not None else training_summary(run, config)
    common = dict(bands=bands, band_mode=band_mode, normalisation_scale=NORMALISATION_SCALE,
                  normalisation=str(config.get("normalisation", "minmax")),
                  wavelengths_nm=tuple(float(w) for w in config.get("wavelengths_nm", [])),
                  fusion=FUSION, training=training)
    generator = torch.Generator().manual_seed(0)
    example = (torch.rand(1, bands, tile, tile, generator=generator) * 2 - 1) * NORMALISATION_SCALE
    export_module(enhancer, example, spectral_path, True,
                  ModelMetadata(branch="spectral", tile_size=0, halo=HALO,
                                companion=os.path.basename(spatial_path), **common))
    export_module(student, example, spatial_path, False,
                  ModelMetadata(branch="spatial", tile_size=tile, halo=0, **common))
    return spectral_path, spatial_path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Export a stage-2 training run to the plugin's ONNX format.")
    parser.add_argument("run", help="stage-2 (student) run folder")
    parser.add_argument("--out", default="resources/models", help="folder for the ONNX files")
    parser.add_argument("--name", required=True, help="model name: NAME.spectral.onnx and NAME.spatial.onnx")
    args = parser.parse_args(argv)
    for path in export_run(args.run, args.out, args.name):
        print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
