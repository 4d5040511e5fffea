"""Change the fusion rule an exported model set declares, leaving its networks untouched.

    python -m training.restamp resources/models/fers-b200-resample.spectral.onnx --fusion product-rx \
        --reason "pooled selection signal, docs/RESULTS.md"

The fusion rule is a detector setting read from the metadata, not part of the networks, so a decision on the
selection signal changes it in place: re-exporting would need the original run folder, and an untrained set
rebuilt on another machine need not get the same weights. Both files of the set are rewritten, and the change is
recorded in their training summary ("fusion_history"), so a model file says which rule it was made with.
"""
import argparse
import dataclasses
import datetime
import os
import sys
from typing import List

import onnx

from fers_qgis.core.model_format import FUSIONS, ModelMetadata


def _metadata(model: onnx.ModelProto, path: str) -> ModelMetadata:
    return ModelMetadata.from_metadata_props({entry.key: entry.value for entry in model.metadata_props}, path)


def restamp_fusion(spectral_path: str, fusion: str, reason: str) -> List[str]:
    """Set ``fusion`` in the spectral file and its spatial companion; returns the rewritten paths."""
    if fusion not in FUSIONS:
        raise ValueError(f"Unknown fusion rule {fusion!r}; choose one of {', '.join(FUSIONS)}.")
    spectral = onnx.load(spectral_path)
    metadata = _metadata(spectral, spectral_path)
    if metadata.branch != "spectral" or not metadata.companion:
        raise ValueError(f"{spectral_path} is not the spectral file of a model set.")
    paths = [spectral_path, os.path.join(os.path.dirname(spectral_path), metadata.companion)]
    models = [spectral, onnx.load(paths[1])]
    changed = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    for model, path, old in zip(models, paths, [metadata, _metadata(models[1], paths[1])]):
        history = list(old.training.get("fusion_history", [])) + [
            {"from": old.fusion, "to": fusion, "changed": changed, "reason": reason}]
        new = dataclasses.replace(old, fusion=fusion, training={**old.training, "fusion_history": history})
        del model.metadata_props[:]
        for key, value in new.to_metadata_props().items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(model)
    for model, path in zip(models, paths):
        onnx.save(model, path)
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Change the fusion rule a FERS model set declares.")
    parser.add_argument("spectral", nargs="+", help="spectral ONNX files (each set's spatial file follows)")
    parser.add_argument("--fusion", required=True, choices=FUSIONS)
    parser.add_argument("--reason", required=True, help="why, recorded in the metadata")
    args = parser.parse_args(argv)
    for spectral in args.spectral:
        for path in restamp_fusion(spectral, args.fusion, args.reason):
            print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
