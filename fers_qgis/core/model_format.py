"""The contract between exported FERS models and the plugin: ONNX input/output names and ``metadata_props``.

A model set is two ONNX files in one folder: the spectral branch (any H x W) and the spatial branch (fixed
square tiles). Each carries the same metadata, plus its own branch name; the spectral file names its spatial
companion. Training writes these with ``to_metadata_props``; the plugin validates them with ``from_metadata_props``
before it runs anything.
"""
import json
from dataclasses import asdict, dataclass, field
from typing import Dict, Tuple

from .errors import InputError
from .spectral import BAND_MODES, NORMALISATIONS

FORMAT_VERSION = 1
INPUT_NAME = "cube"         # float32 (N, B, H, W), normalised as recorded in the metadata
OUTPUT_NAME = "features"    # float32 (N, B, H, W): spe_f for the spectral branch, spa_f for the spatial one
BRANCHES = ("spectral", "spatial")
# RX on x + spa_f + spe_f; the product of the two single-branch RX maps (scaled 0-1); or that product times the
# scaled RX map of x itself ("product-rx"), so that a pixel scores high only if the unenhanced bands agree.
FUSIONS = ("sum", "product", "product-rx")
_PREFIX = "fers_"


@dataclass(frozen=True)
class ModelMetadata:
    """What the plugin needs to run a model exactly as it was trained."""

    branch: str                 # "spectral" or "spatial"
    bands: int                  # B, the model's input and output band count
    band_mode: str              # "first" or "resample" (fers_qgis.core.spectral)
    normalisation_scale: float  # the image's value range to [-scale, scale]
    tile_size: int              # spatial: the fixed tile side it was exported at; spectral: 0 (any size)
    halo: int                   # pixels of context a tile needs on each side for exact stitching
    fusion: str                 # how the detector combines branches (one of FUSIONS)
    companion: str = ""         # spectral file: the file name of its spatial branch in the same folder
    # How the value range is found (fers_qgis.core.spectral NORMALISATIONS); files written before this field
    # existed were trained with the exact min and max of each tile.
    normalisation: str = "minmax"
    # Centre wavelengths (nm) of the model's B bands as trained, when known: rasters with wavelengths are then
    # fed by wavelength; empty: the band mode decides.
    wavelengths_nm: Tuple[float, ...] = ()
    format_version: int = FORMAT_VERSION
    training: Dict[str, object] = field(default_factory=dict)  # data, config and commit summary

    def to_metadata_props(self) -> Dict[str, str]:
        """String key/values for ``onnx.ModelProto.metadata_props``."""
        props = {}
        for key, value in asdict(self).items():
            props[_PREFIX + key] = json.dumps(value) if isinstance(value, (dict, tuple)) else str(value)
        return props

    @classmethod
    def from_metadata_props(cls, props: Dict[str, str], source: str = "model") -> "ModelMetadata":
        """Parse and validate metadata; raise InputError naming what is missing or unsupported."""
        if _PREFIX + "format_version" not in props:
            raise InputError(f"{source} is not a FERS model: its ONNX metadata has no {_PREFIX}format_version.")
        try:
            version = int(props[_PREFIX + "format_version"])
        except ValueError as error:
            raise InputError(f"{source} has an unreadable format version.") from error
        if version != FORMAT_VERSION:
            raise InputError(f"{source} uses FERS model format {version}; this plugin reads format "
                             f"{FORMAT_VERSION}. Update the plugin or use a matching model.")
        try:
            metadata = cls(
                branch=props[_PREFIX + "branch"],
                bands=int(props[_PREFIX + "bands"]),
                band_mode=props[_PREFIX + "band_mode"],
                normalisation_scale=float(props[_PREFIX + "normalisation_scale"]),
                tile_size=int(props[_PREFIX + "tile_size"]),
                halo=int(props[_PREFIX + "halo"]),
                fusion=props[_PREFIX + "fusion"],
                companion=props.get(_PREFIX + "companion", ""),
                normalisation=props.get(_PREFIX + "normalisation", "minmax"),
                wavelengths_nm=tuple(float(w) for w in json.loads(props.get(_PREFIX + "wavelengths_nm", "[]"))),
                format_version=version,
                training=json.loads(props.get(_PREFIX + "training", "{}") or "{}"),
            )
        except (KeyError, ValueError, TypeError) as error:
            raise InputError(f"{source} has incomplete FERS metadata ({error}).") from error
        problems = []
        if metadata.branch not in BRANCHES:
            problems.append(f"branch {metadata.branch!r}")
        if metadata.band_mode not in BAND_MODES:
            problems.append(f"band mode {metadata.band_mode!r}")
        if metadata.fusion not in FUSIONS:
            problems.append(f"fusion {metadata.fusion!r}")
        if metadata.normalisation not in NORMALISATIONS:
            problems.append(f"normalisation {metadata.normalisation!r}")
        if metadata.wavelengths_nm and len(metadata.wavelengths_nm) != metadata.bands:
            problems.append(f"{len(metadata.wavelengths_nm)} wavelengths for {metadata.bands} bands")
        if metadata.bands < 2 or metadata.tile_size < 0 or metadata.halo < 0 or metadata.normalisation_scale <= 0:
            problems.append("sizes")
        if metadata.branch == "spatial" and metadata.tile_size == 0:
            problems.append("a spatial branch without a tile size")
        if problems:
            raise InputError(f"{source} has unsupported FERS metadata: {', '.join(problems)}.")
        return metadata
