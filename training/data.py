"""Background tiles for training: GeoTIFF scenes in a folder -> random, augmented, normalised 64 x 64 tiles.

Every ``NAME.tif`` in the folder is a background scene; a ``NAME_gt.tif`` beside it marks anomalies (non-zero),
which are excluded together with a margin so that no training tile contains one. Bands become the model's B bands
through ``fers_qgis.core.spectral`` (the plugin's own definition) and each tile is min-max normalised on its own,
as published. Whole scenes can be held out for validation: synthetic anomalies pasted into their crops (the mask
generator of ``training.masks``) are the only model-selection signal training may use.
"""
import logging
import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from fers_qgis.core.progress import Progress
from fers_qgis.core.raster import describe_raster, gdal_errors_as_exceptions, open_dataset
from fers_qgis.core.spectral import MinMaxNormaliser, band_matrix, known_wavelengths, to_model_bands
from fers_qgis.core.validity import model_band_reader

from .masks import PASTE_KINDS, paste_batch

LOGGER = logging.getLogger(__name__)
TILE_SIZE = 64
EXCLUSION_MARGIN = 4
LABEL_SUFFIX = "_gt"
# Validation tiles get at most this many pasted targets: up to 32 identical pasted spectra (the training masks)
# make a cluster that global RX absorbs into its covariance, so RX-based scores need rare anomalies.
VALIDATION_MAX_TARGETS = 4


@dataclass
class Scene:
    """One background scene in model bands."""

    name: str
    cube_bhw: np.ndarray    # (B, rows, columns) float32, raw values (normalised per tile later)
    excluded_hw: np.ndarray  # (rows, columns) bool: anomalies (dilated by the margin) and invalid pixels
    wavelengths_nm: Optional[np.ndarray] = None  # (B,) of the model bands, when the scene's bands have them


class _LogProgress(Progress):
    """The validity decisions of a scene, into this module's log."""

    def info(self, message: str) -> None:
        LOGGER.info(message)


def dilate(mask_hw: np.ndarray, margin: int) -> np.ndarray:
    """Square (Chebyshev) dilation of a boolean mask by ``margin`` pixels."""
    if margin <= 0 or not mask_hw.any():
        return mask_hw.copy()
    padded = np.pad(mask_hw, margin)
    rows, columns = mask_hw.shape
    grown = np.zeros_like(mask_hw)
    for dy in range(2 * margin + 1):
        for dx in range(2 * margin + 1):
            grown |= padded[dy:dy + rows, dx:dx + columns]
    return grown


def scene_names(folder: str) -> List[str]:
    """Names of the background scenes in ``folder``: every NAME.tif that is not itself a NAME_gt.tif."""
    names = []
    for entry in sorted(os.listdir(folder)):
        stem, extension = os.path.splitext(entry)
        if extension.lower() in (".tif", ".tiff") and not stem.endswith(LABEL_SUFFIX):
            names.append(stem)
    return names


def read_cube(path: str) -> np.ndarray:
    """(bands, rows, columns) float32 of a whole raster."""
    dataset = open_dataset(path)
    with gdal_errors_as_exceptions():
        cube = dataset.ReadAsArray()
    return np.asarray(cube, dtype=np.float32).reshape(dataset.RasterCount, dataset.RasterYSize, dataset.RasterXSize)


def load_scene(folder: str, name: str, bands: int, band_mode: str,
               margin: int = EXCLUSION_MARGIN) -> Optional[Scene]:
    """Read one scene in model bands with its exclusion mask; None (with a logged note) if it cannot be used."""
    path = os.path.join(folder, name + ".tif")
    if not os.path.exists(path):
        path = os.path.join(folder, name + ".tiff")
    info = describe_raster(path)
    if band_mode == "first" and info.band_count < bands:
        LOGGER.warning("Skipping %s: it has %d bands, fewer than the model's first %d.", name, info.band_count, bands)
        return None
    # The plugin's own rules decide the bad bands and the invalid pixels (nodata, NaN, GDAL masks, fill).
    reader, matrix, used = model_band_reader(
        info, lambda usable: band_matrix(info.band_count, bands, band_mode, info.wavelengths_nm, usable=usable),
        progress=_LogProgress())
    try:
        source_bhw, valid_hw = reader.read(0, info.height)
        cube = np.array(to_model_bands(source_bhw, matrix), dtype=np.float32)
        excluded = ~valid_hw
    finally:
        reader.close()
    source_wavelengths = known_wavelengths(info.wavelengths_nm)
    wavelengths = matrix @ source_wavelengths[used] if source_wavelengths is not None else None
    label_path = os.path.join(folder, name + LABEL_SUFFIX + ".tif")
    if os.path.exists(label_path):
        labels = read_cube(label_path)[0]
        if labels.shape != excluded.shape:
            raise ValueError(f"{label_path} is {labels.shape[::-1]} pixels but {path} is {excluded.shape[::-1]}.")
        excluded |= dilate(labels != 0, margin)
    return Scene(name, cube, excluded, wavelengths)


def load_scenes(folder: str, bands: int, band_mode: str, margin: int = EXCLUSION_MARGIN) -> List[Scene]:
    """All usable scenes of a folder (see ``load_scene``)."""
    scenes = [load_scene(folder, name, bands, band_mode, margin) for name in scene_names(folder)]
    scenes = [scene for scene in scenes if scene is not None]
    if not scenes:
        raise ValueError(f"No usable background scenes with {bands} bands ({band_mode!r} mode) in {folder}.")
    return scenes


def training_wavelengths(scenes: Sequence[Scene]) -> List[float]:
    """The model bands' wavelengths (nm) when every scene has them and they agree to a quarter of the band
    spacing (one sensor's band set), else [] (mixed or unknown band sets: the model keeps its band mode)."""
    known = [scene.wavelengths_nm for scene in scenes]
    if not known or any(wavelengths is None for wavelengths in known):
        LOGGER.info("Not every training scene has band wavelengths: the model records none.")
        return []
    reference = np.mean(known, axis=0)
    tolerance = 0.25 * float(np.median(np.abs(np.diff(reference)))) if reference.size > 1 else 0.0
    if max(float(np.max(np.abs(wavelengths - reference))) for wavelengths in known) > tolerance:
        LOGGER.info("The training scenes' model bands lie at different wavelengths: the model records none.")
        return []
    return [round(float(w), 3) for w in reference]


def clean_positions(excluded_hw: np.ndarray, size: int) -> np.ndarray:
    """(K, 2) top-left (row, column) of every size x size window that contains no excluded pixel."""
    rows, columns = excluded_hw.shape
    if rows < size or columns < size:
        return np.zeros((0, 2), dtype=np.int64)
    integral = np.pad(excluded_hw.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    counts = (integral[size:, size:] - integral[:-size, size:] - integral[size:, :-size] + integral[:-size, :-size])
    return np.argwhere(counts == 0)


def augment(tile_bhw: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random multiple of 90 degrees, then horizontal and vertical flips with probability 1/2 each."""
    tile_bhw = np.rot90(tile_bhw, int(rng.integers(0, 4)), axes=(1, 2))
    if rng.random() < 0.5:
        tile_bhw = tile_bhw[:, :, ::-1]
    if rng.random() < 0.5:
        tile_bhw = tile_bhw[:, ::-1, :]
    return np.ascontiguousarray(tile_bhw)


def normalise_tile(tile_bhw: np.ndarray, normalisation: str = "minmax") -> np.ndarray:
    """Per-tile range to [-0.1, 0.1] with the plugin's normaliser (a NORMALISATIONS method)."""
    return MinMaxNormaliser.fit(tile_bhw, method=normalisation).apply(tile_bhw).astype(np.float32)


@dataclass
class ValidationSet:
    """Held-out tiles with pasted synthetic anomalies (kinds other than "no"): (N, B, T, T) and (N, 1, T, T)."""

    clean: np.ndarray
    pasted: np.ndarray
    labels: np.ndarray


class TileSampler:
    """Uniform random clean crops over a set of scenes (every admissible window equally likely)."""

    def __init__(self, scenes: Sequence[Scene], tile_size: int = TILE_SIZE, normalisation: str = "minmax"):
        self.scenes = list(scenes)
        self.tile_size = tile_size
        self.normalisation = normalisation
        self.positions = [clean_positions(scene.excluded_hw, tile_size) for scene in self.scenes]
        for scene, positions in zip(self.scenes, self.positions):
            if len(positions) == 0:
                LOGGER.warning("%s has no %d x %d window free of anomalies; it is not sampled.", scene.name,
                               tile_size, tile_size)
        counts = np.array([len(positions) for positions in self.positions], dtype=np.float64)
        if counts.sum() == 0:
            raise ValueError(f"No {tile_size} x {tile_size} window free of anomalies in any scene.")
        self.weights = counts / counts.sum()

    @property
    def bands(self) -> int:
        return self.scenes[0].cube_bhw.shape[0]

    def crop(self, rng: np.random.Generator) -> np.ndarray:
        """One raw (B, T, T) crop."""
        index = int(rng.choice(len(self.scenes), p=self.weights))
        row, column = self.positions[index][int(rng.integers(0, len(self.positions[index])))]
        size = self.tile_size
        return self.scenes[index].cube_bhw[:, row:row + size, column:column + size]

    def batch(self, count: int, rng: np.random.Generator, augmented: bool = True) -> np.ndarray:
        """(count, B, T, T) float32 normalised tiles."""
        tiles = []
        for _ in range(count):
            tile = self.crop(rng)
            tiles.append(normalise_tile(augment(tile, rng) if augmented else tile, self.normalisation))
        return np.stack(tiles)

    def validation_set(self, count: int, seed: int, kinds: Tuple[str, ...] = PASTE_KINDS[1:],
                       max_targets: int = VALIDATION_MAX_TARGETS) -> ValidationSet:
        """A fixed set of ``count`` crops (not augmented) with pasted anomalies, reproducible from ``seed``."""
        rng = np.random.default_rng(seed)
        clean = self.batch(count, rng, augmented=False)
        pasted, labels = paste_batch(clean, rng, kinds, max_targets)
        return ValidationSet(clean, pasted, labels)


def split_scenes(scenes: Sequence[Scene], validation: Sequence[str] = (), validation_count: int = 0,
                 seed: int = 0) -> Tuple[List[Scene], List[Scene]]:
    """(training, validation) scenes: the named ones, else ``validation_count`` drawn with ``seed``; at least one
    scene always stays for training."""
    names = [scene.name for scene in scenes]
    unknown = sorted(set(validation) - set(names))
    if unknown:
        raise ValueError(f"Validation scenes not found among the training scenes: {', '.join(unknown)}.")
    held = set(validation)
    if not held and validation_count > 0:
        order = np.random.default_rng(seed).permutation(len(scenes))
        held = {names[index] for index in order[:min(validation_count, len(scenes) - 1)]}
    if len(held) >= len(scenes):
        raise ValueError("At least one scene must remain for training.")
    return ([scene for scene in scenes if scene.name not in held], [scene for scene in scenes if scene.name in held])
