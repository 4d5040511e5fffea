"""Loading and running a FERS model set (spectral + spatial ONNX branches) with onnxruntime.

onnxruntime is imported only when a model is loaded, so the plugin and its RX tools work without it; a missing
install becomes a MissingDependency error that tells the user how to install it. Every problem with a model file
(missing, damaged, foreign, mismatched) becomes an InputError sentence, never a traceback.
"""
import glob
import importlib
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .errors import FersError, InputError
from .model_format import INPUT_NAME, OUTPUT_NAME, ModelMetadata

# Shipped model sets: `models/` inside the packaged plugin, `resources/models/` in the source tree.
_PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_FOLDERS = (os.path.join(_PLUGIN_DIR, "models"), os.path.join(os.path.dirname(_PLUGIN_DIR), "resources", "models"))
SPECTRAL_SUFFIX = ".spectral.onnx"


def shipped_models() -> List[str]:
    """Spectral files of the model sets shipped with the plugin (each names its spatial companion)."""
    for folder in MODEL_FOLDERS:
        found = sorted(glob.glob(os.path.join(folder, "*" + SPECTRAL_SUFFIX)))
        if found:
            return found
    return []


def spectrum_share(metadata: ModelMetadata, band_count: int) -> float:
    """The share of a raster's bands (0-1) that a model set reads: a "first" set its first B of them (0 when
    the raster has fewer), a "resample" set all of them."""
    if metadata.band_mode == "resample":
        return 1.0
    return metadata.bands / band_count if metadata.bands <= band_count else 0.0


def shipped_model_for(band_count: int, models: Optional[Sequence[str]] = None) -> str:
    """The model set (default: the shipped ones) that reads the most of a raster with ``band_count`` bands.

    First the set that covers the most of the raster's spectrum, then the one that keeps the most of its bands
    (min(B, band_count): a set with more model bands than the raster has loses none of them, the extra ones are
    interpolated), then the one that interpolates the fewest (the smaller B); among equals the published "first"
    mode wins."""
    models = shipped_models() if models is None else list(models)
    if not models:
        raise InputError("No model is shipped with this plugin: choose a model file (*.spectral.onnx).")
    described = [(path, load_model_set(path).metadata) for path in models]
    usable = [(spectrum_share(metadata, band_count), min(metadata.bands, band_count), -metadata.bands,
               metadata.band_mode == "first", path) for path, metadata in described
              if spectrum_share(metadata, band_count) > 0]
    if not usable:
        needs = "; ".join(f"{model_label(path)} at least {metadata.bands}" for path, metadata in described)
        raise InputError(f"The raster has {band_count} bands, and no shipped model set can read it (each reads "
                         f"its first bands: {needs}): use RX, or a model file trained for at most {band_count} "
                         "bands.")
    return max(usable)[-1]


def model_label(path: str) -> str:
    """A model set's name: its spectral file name without '.spectral.onnx'."""
    return os.path.basename(path)[:-len(SPECTRAL_SUFFIX)]


INSTALL_HINT = "use Plugins > FERS > Install FERS dependencies"


class MissingDependency(FersError):
    """A Python package the job needs is not installed in QGIS's Python."""


def import_onnxruntime():
    """The onnxruntime module, or MissingDependency saying how to install it.

    A failed look-up is retried with fresh import caches: onnxruntime may have been installed since the last one
    (Plugins > FERS > Install FERS dependencies runs while QGIS runs, and no restart should be needed)."""
    try:
        return importlib.import_module("onnxruntime")
    except ImportError:
        importlib.invalidate_caches()
    try:
        return importlib.import_module("onnxruntime")
    except ImportError as error:
        raise MissingDependency(
            f"onnxruntime is not installed in QGIS's Python, and FERS models need it to run: {INSTALL_HINT} "
            f"(or install the 'onnxruntime' package into QGIS's Python with pip).") from error


def _providers(onnxruntime, use_gpu: bool) -> Sequence[str]:
    """CUDA first when asked for and present in this onnxruntime build; CPU always as the fallback."""
    available = onnxruntime.get_available_providers()
    if use_gpu and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _open_session(onnxruntime, path: str, use_gpu: bool):
    """An InferenceSession for one file, with file problems turned into InputError."""
    name = os.path.basename(path)
    if not os.path.isfile(path):
        raise InputError(f"Model file not found: {path!r}.")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    options.log_severity_level = 3  # onnxruntime's warnings are not for the user
    options.enable_cpu_mem_arena = False
    try:
        return onnxruntime.InferenceSession(path, sess_options=options, providers=_providers(onnxruntime, use_gpu))
    except Exception as error:  # onnxruntime raises its own pybind classes (InvalidProtobuf, Fail, ...)
        # onnxruntime's text repeats the path; its last clause says what failed ("Protobuf parsing failed.").
        detail = (str(error).strip().splitlines() or [type(error).__name__])[0].rsplit("failed:", 1)[-1].strip()
        raise InputError(f"{name} cannot be loaded as an ONNX model: the file is damaged, truncated or not an ONNX "
                         f"model this onnxruntime can run ({detail.rstrip('.')}).") from error


def _check_signature(session, metadata: ModelMetadata, name: str) -> None:
    """The graph must take 'cube' (N, B, H, W) and give 'features' with the metadata's band count."""
    inputs = {item.name: item for item in session.get_inputs()}
    outputs = {item.name for item in session.get_outputs()}
    if INPUT_NAME not in inputs or OUTPUT_NAME not in outputs:
        raise InputError(f"{name} does not have the FERS input {INPUT_NAME!r} and output {OUTPUT_NAME!r}: it was not "
                         f"exported by the FERS training package.")
    shape = inputs[INPUT_NAME].shape
    if len(shape) != 4:
        raise InputError(f"{name} takes a {len(shape)}-dimensional input; FERS models take (N, bands, rows, columns).")
    if isinstance(shape[1], int) and shape[1] != metadata.bands:
        raise InputError(f"{name} takes {shape[1]} bands but its metadata says {metadata.bands}: the file is "
                         f"inconsistent; export it again.")
    if metadata.branch == "spatial":
        sides = [side for side in shape[2:] if isinstance(side, int)]
        if any(side != metadata.tile_size for side in sides):
            raise InputError(f"{name} takes {shape[2]} x {shape[3]} tiles but its metadata says "
                             f"{metadata.tile_size}: the file is inconsistent; export it again.")


def _read_metadata(session, name: str) -> ModelMetadata:
    """The FERS metadata of a loaded file, validated."""
    props = dict(session.get_modelmeta().custom_metadata_map or {})
    return ModelMetadata.from_metadata_props(props, source=name)


@dataclass
class FersModelSet:
    """The two branches of a FERS model, ready to run; arrays in and out are float32, bands first."""

    spectral_path: str
    spatial_path: str
    metadata: ModelMetadata           # the spectral file's (bands, band mode, normalisation, fusion, halo)
    spatial_metadata: ModelMetadata   # the spatial file's (tile size)
    _spectral: Any
    _spatial: Any

    @property
    def bands(self) -> int:
        """B, the model's input and output band count."""
        return self.metadata.bands

    @property
    def tile_size(self) -> int:
        """The spatial branch's fixed tile side, pixels."""
        return self.spatial_metadata.tile_size

    @property
    def halo(self) -> int:
        """Pixels of real context the spectral branch needs around a tile for exact stitching."""
        return self.metadata.halo

    def spectral_features(self, tile_bhw: np.ndarray) -> np.ndarray:
        """spe_f of one (B, H, W) tile of normalised model bands; (B, H, W) float32."""
        batch = np.ascontiguousarray(tile_bhw, dtype=np.float32)[None]
        return self._spectral.run([OUTPUT_NAME], {INPUT_NAME: batch})[0][0]

    def spatial_features(self, tiles: np.ndarray) -> np.ndarray:
        """spa_f of (B, T, T) tiles or a batch of them (N, B, T, T), T = tile_size; same shape, float32."""
        single = tiles.ndim == 3
        batch = np.ascontiguousarray(tiles[None] if single else tiles, dtype=np.float32)
        features = self._spatial.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]
        return features[0] if single else features


def load_model_set(spectral_path: str, use_gpu: bool = False) -> FersModelSet:
    """Open a FERS model set from its spectral ONNX file and the spatial companion it names; validate both.

    Sets stay loaded while their files are unchanged: a Processing algorithm checks its model before the run and
    then runs it, and batch runs use one model many times (onnxruntime sessions may run in several threads)."""
    onnxruntime = import_onnxruntime()
    key = (os.path.abspath(spectral_path), use_gpu)
    loaded = _LOADED.get(key)
    if loaded is not None and loaded[0] == _file_versions(loaded[1].spectral_path, loaded[1].spatial_path):
        return loaded[1]
    model = _open_model_set(onnxruntime, spectral_path, use_gpu)
    if len(_LOADED) >= _LOADED_LIMIT:
        _LOADED.clear()
    _LOADED[key] = (_file_versions(model.spectral_path, model.spatial_path), model)
    return model


_LOADED: Dict[Tuple[str, bool], Tuple[tuple, FersModelSet]] = {}
_LOADED_LIMIT = 4


def _file_versions(*paths: str) -> tuple:
    """(modification time, size) of each file; None for a file that is gone."""
    versions = []
    for path in paths:
        try:
            stat = os.stat(path)
            versions.append((stat.st_mtime_ns, stat.st_size))
        except OSError:
            versions.append(None)
    return tuple(versions)


def _open_model_set(onnxruntime, spectral_path: str, use_gpu: bool) -> FersModelSet:
    name = os.path.basename(spectral_path)
    spectral = _open_session(onnxruntime, spectral_path, use_gpu)
    metadata = _read_metadata(spectral, name)
    if metadata.branch != "spectral":
        raise InputError(f"{name} is the spatial branch of a FERS model: choose the spectral file "
                         f"(*.spectral.onnx) of the set; it names its spatial companion.")
    _check_signature(spectral, metadata, name)
    if not metadata.companion:
        raise InputError(f"{name} does not name its spatial companion file: export the model set again.")
    spatial_path = os.path.join(os.path.dirname(os.path.abspath(spectral_path)), metadata.companion)
    if not os.path.isfile(spatial_path):
        raise InputError(f"{name} needs its spatial branch {metadata.companion!r} in the same folder, and it is "
                         f"not there: copy both files of the model set together.")
    spatial = _open_session(onnxruntime, spatial_path, use_gpu)
    spatial_metadata = _read_metadata(spatial, metadata.companion)
    if spatial_metadata.branch != "spatial":
        raise InputError(f"{metadata.companion}, named as the spatial companion of {name}, is not a spatial "
                         f"branch: export the model set again.")
    _check_signature(spatial, spatial_metadata, metadata.companion)
    mismatched = [field for field in ("bands", "band_mode", "normalisation_scale", "normalisation", "wavelengths_nm")
                  if getattr(metadata, field) != getattr(spatial_metadata, field)]
    if mismatched:
        raise InputError(f"{name} and {metadata.companion} disagree on {', '.join(mismatched)}: they are not one "
                         f"model set; export them together.")
    return FersModelSet(os.path.abspath(spectral_path), spatial_path, metadata, spatial_metadata, spectral, spatial)
