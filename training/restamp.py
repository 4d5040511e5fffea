"""Change the fusion rule an exported model set declares, leaving its networks untouched.

    python -m training.restamp resources/models/fers-b200-resample.spectral.onnx --fusion product-rx \
        --reason "pooled selection signal, docs/RESULTS.md"

The fusion rule is a detector setting read from the metadata, not part of the networks, so a decision on the
selection signal changes it in place: re-exporting would need the original run folder, and an untrained set
rebuilt on another machine need not get the same weights. Both files of the set are rewritten, and the change is
recorded in their training summary ("fusion_history"), so a model file says which rule it was made with.
"""
import argparse
import datetime
import json
import os
import sys
from typing import List

import onnx

from fers_qgis.core.model_format import FUSIONS, ModelMetadata

_FUSION_KEY = "fers_fusion"
_TRAINING_KEY = "fers_training"


def _props(model: onnx.ModelProto) -> dict:
    return {entry.key: entry.value for entry in model.metadata_props}


def restamp_fusion(spectral_path: str, fusion: str, reason: str) -> List[str]:
    """Set ``fusion`` in the spectral file and its spatial companion; returns the rewritten paths."""
    if fusion not in FUSIONS:
        raise ValueError(f"Unknown fusion rule {fusion!r}; choose one of {', '.join(FUSIONS)}.")
    spectral = onnx.load(spectral_path)
    metadata = ModelMetadata.from_metadata_props(_props(spectral), spectral_path)
    if metadata.branch != "spectral" or not metadata.companion:
        raise ValueError(f"{spectral_path} is not the spectral file of a model set.")
    paths = [spectral_path, os.path.join(os.path.dirname(spectral_path), metadata.companion)]
    models = [spectral, onnx.load(paths[1])]
    changed = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    for model, path in zip(models, paths):
        props = _props(model)
        ModelMetadata.from_metadata_props(props, path)
        previous = props[_FUSION_KEY]
        training = json.loads(props.get(_TRAINING_KEY, "{}") or "{}")
        training.setdefault("fusion_history", []).append(
            {"from": previous, "to": fusion, "changed": changed, "reason": reason})
        for entry in model.metadata_props:
            if entry.key == _FUSION_KEY:
                entry.value = fusion
            elif entry.key == _TRAINING_KEY:
                entry.value = json.dumps(training)
        if _TRAINING_KEY not in props:
            entry = model.metadata_props.add()
            entry.key, entry.value = _TRAINING_KEY, json.dumps(training)
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
