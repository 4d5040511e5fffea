"""Train the FERS networks on background scenes.

    python -m training.train --stage teacher --bands 50 --band-mode first --data DIR --out RUN_T
    (optional first: --stage encoder ... --out RUN_E, then --stage teacher ... --encoder RUN_E)
    python -m training.train --stage student --bands 50 --band-mode first --data DIR --out RUN_S --teacher RUN_T
    (--teacher random: stage 2 on the untrained, kaiming-initialised spectral enhancer, an ablation)

Options: --epochs E --steps-per-epoch S --batch 16 --lr 5e-3 --seed 0 --device cpu|cuda --compile auto|on|off --resume.
--epochs 0 saves the untrained networks (the ablation baseline). Adam with betas
(0.5, 0.999) and a fixed schedule, as published; no model selection on test data. RUN holds config.json,
checkpoint.pt (resumable, written every epoch), enhancer.pt (the spectral branch), student.pt (stage 2) and
history.jsonl (losses and the synthetic-anomaly validation per epoch).

The optional encoder stage pretrains the spectral branch's stem and layer1 self-supervised: masked pixels' spectra
are predicted from their neighbourhood (``MaskedSpectrumModel``); a stage-1 run with --encoder starts from them
(layer1 then stays frozen as usual), and a stage-2 run may take the encoder run as its --teacher directly.
Stage 1 trains the stem, one-class bottleneck, decoder, de_ConvH and pixel head with the teacher encoder frozen;
its pixel head learns to find AETNet-style pasted anomalies (label 1), the signal the published all-zero target
lacks (FINDINGS 1). Stage 2 trains the spatial student and the FRN with the spectral branch frozen (no grad).
"""
import argparse
import dataclasses
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from fers_qgis.core.metrics import roc_auc
from fers_qgis.core.rx import BackgroundStatistics, rx_scores, whitening_matrix
from fers_qgis.core.spectral import BAND_MODES, NORMALISATIONS

from . import losses
from .data import (EXCLUSION_MARGIN, TILE_SIZE, TileSampler, ValidationSet, load_scenes, split_scenes,
                   training_wavelengths)
from .masks import PASTE_KINDS, paste_batch
from .models.restoration import FeatureRestoration
from .models.student import SpatialStudent
from .models.teacher import MaskedSpectrumModel, ReverseDistillationTeacher, SpectralEnhancer, TeacherConfig

CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.pt"
ENHANCER_FILE = "enhancer.pt"
STUDENT_FILE = "student.pt"
HISTORY_FILE = "history.jsonl"
RANDOM_TEACHER = "random"
STAGES = ("encoder", "teacher", "student")
COMPILE_CHOICES = ("auto", "on", "off")
# torch.compile takes about 100 s on 2 cores and then makes a step up to 2.4x faster (docs/RESULTS.md, "Training
# speed"): "auto" compiles runs of at least this many steps.
COMPILE_MIN_STEPS = 100
# Default schedules (epochs of 50 steps, batch 16), sized so that a full run of both stages at B = 50 takes about
# 30 minutes on a 2-core CPU (teacher about 7 s a step, student about 2.5 s). Fixed, not selected on any score.
DEFAULT_EPOCHS = {"encoder": 4, "teacher": 2, "student": 6}
# Encoder pretraining: the share of pixels whose spectra are zeroed and predicted (fixed, not selected).
MASK_FRACTION = 0.25


@dataclass
class TrainConfig:
    """Everything a run depends on; saved as RUN/config.json."""

    stage: str
    bands: int
    band_mode: str
    data: str
    out: str
    epochs: int = 6
    steps_per_epoch: int = 50
    batch: int = 16
    lr: float = 5e-3
    seed: int = 0
    device: str = "cpu"
    tile_size: int = TILE_SIZE
    margin: int = EXCLUSION_MARGIN
    validation_scenes: List[str] = field(default_factory=list)
    validation_count: int = 1       # scenes held out (drawn with the seed) when none are named
    validation_tiles: int = 32
    teacher: str = RANDOM_TEACHER   # stage 2: a stage-1 (or encoder) RUN folder, or "random"
    encoder: str = ""               # stage 1: an encoder RUN whose stem and layer1 start the teacher ("" = random)
    mask_fraction: float = MASK_FRACTION
    # stage 1 loss weights and pastes
    rd_weight: float = 1.0
    reconstruction_weight: float = 0.1
    pixel_weight: float = 0.1
    paste_kinds: List[str] = field(default_factory=lambda: list(PASTE_KINDS))
    teacher_network: Dict[str, object] = field(default_factory=lambda: dataclasses.asdict(TeacherConfig()))
    # stage 2 loss weights
    cosine_weight: float = 0.1
    variance_weight: float = 0.1
    ssim_weight: float = 0.01
    ssim_max_val: float = 1.0
    scenes: List[str] = field(default_factory=list)  # filled in: the scenes trained on
    # Runs saved before this field existed normalised each tile by its exact min and max.
    normalisation: str = "minmax"
    wavelengths_nm: List[float] = field(default_factory=list)  # filled in: the model bands' (training_wavelengths)
    compile: str = "auto"  # COMPILE_CHOICES: torch.compile of the training step (the same computation, fused)


def rx_auc(cube_bhw: np.ndarray, labels_hw: np.ndarray) -> float:
    """Pixel ROC AUC of global RX on one tile (float64, pseudo-inverse rule of the core)."""
    pixels = cube_bhw.reshape(cube_bhw.shape[0], -1).T.astype(np.float64)
    statistics = BackgroundStatistics(pixels.shape[1])
    statistics.add(pixels)
    scores = rx_scores(pixels, statistics.mean, whitening_matrix(statistics.covariance))
    return roc_auc(scores, labels_hw.ravel())


def mean_rx_auc(cubes_nbhw: np.ndarray, labels_n1hw: np.ndarray) -> float:
    """Mean over tiles with at least one pasted pixel."""
    aucs = [rx_auc(cube, label[0]) for cube, label in zip(cubes_nbhw, labels_n1hw) if 0 < label.sum() < label.size]
    return float(np.mean(aucs)) if aucs else float("nan")


class Trainer:
    """One stage's networks, optimiser and step; ``run`` is the epoch loop with checkpoints."""

    def __init__(self, config: TrainConfig):
        self.config = config
        self.device = torch.device(config.device)
        torch.manual_seed(config.seed)
        scenes = load_scenes(config.data, config.bands, config.band_mode, config.margin)
        training, validation = split_scenes(scenes, config.validation_scenes, config.validation_count, config.seed)
        config.scenes = [scene.name for scene in training]
        config.validation_scenes = [scene.name for scene in validation]
        config.wavelengths_nm = training_wavelengths(training)
        self.sampler = TileSampler(training, config.tile_size, config.normalisation)
        self.validation: Optional[ValidationSet] = None
        if validation:
            self.validation = TileSampler(validation, config.tile_size, config.normalisation).validation_set(
                config.validation_tiles, seed=config.seed + 1)
        if config.stage == "encoder":
            self.pretraining = MaskedSpectrumModel(config.bands)
            self.modules = {"encoder": self.pretraining}
            self.enhancer = self.pretraining.inference_part()
        elif config.stage == "teacher":
            self.teacher = ReverseDistillationTeacher(config.bands, TeacherConfig(**config.teacher_network))
            self.modules = {"teacher": self.teacher}
            self.enhancer = self.teacher.inference_part()
            if config.encoder:
                pretrained = read_enhancer(config.encoder, config.bands).state_dict()
                self.enhancer.load_state_dict({name: value for name, value in pretrained.items()
                                               if name.startswith(("convh.", "layer1."))}, strict=False)
        else:
            self.enhancer = load_enhancer(config.teacher, config.bands, config.seed)
            self.enhancer.requires_grad_(False)
            self.student = SpatialStudent(config.bands)
            self.restoration = FeatureRestoration(config.bands)
            self.modules = {"student": self.student, "restoration": self.restoration}
        for module in list(self.modules.values()) + [self.enhancer]:
            # Channels-last lets oneDNN run the convolutions without reordering every tensor (1.3x a step).
            module.to(self.device, memory_format=torch.channels_last)
        steps = config.epochs * config.steps_per_epoch
        compiled = config.compile == "on" or (config.compile == "auto" and steps >= COMPILE_MIN_STEPS)
        losses_of_batch = {"encoder": self.encoder_losses, "teacher": self.teacher_losses,
                           "student": self.student_losses}[config.stage]
        self.batch_losses = torch.compile(losses_of_batch) if compiled else losses_of_batch
        parameters = [p for module in self.modules.values() for p in module.parameters() if p.requires_grad]
        self.optimiser = torch.optim.Adam(parameters, lr=config.lr, betas=(0.5, 0.999))

    def tensor(self, array: np.ndarray) -> torch.Tensor:
        """A (N, C, H, W) batch on the device, channels-last like the networks."""
        return torch.from_numpy(array).to(self.device).contiguous(memory_format=torch.channels_last)

    def masked(self, clean: np.ndarray, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
        """(tiles with a random MASK_FRACTION of pixels zeroed, (N, 1, T, T) float32 mask of those pixels)."""
        mask = (rng.random((clean.shape[0], 1) + clean.shape[2:]) < self.config.mask_fraction).astype(np.float32)
        return clean * (1.0 - mask), mask

    def encoder_losses(self, clean: torch.Tensor, masked: torch.Tensor, mask: torch.Tensor
                       ) -> Dict[str, torch.Tensor]:
        loss = losses.masked_mse(self.pretraining(masked), clean, mask)
        return {"masked": loss, "loss": loss}

    def teacher_losses(self, clean: torch.Tensor, pasted: torch.Tensor, labels: torch.Tensor
                       ) -> Dict[str, torch.Tensor]:
        output = self.teacher(pasted)
        parts = {"rd": losses.reverse_distillation_loss(output.encoder, output.decoder),
                 "rec": losses.reconstruction_mse(output.reconstruction, clean),
                 "bce": losses.pixel_bce(output.pixel_logits, labels)}
        config = self.config
        parts["loss"] = (config.rd_weight * parts["rd"] + config.reconstruction_weight * parts["rec"]
                         + config.pixel_weight * parts["bce"])
        return parts

    def student_losses(self, cube: torch.Tensor) -> Dict[str, torch.Tensor]:
        with torch.no_grad():
            spectral = self.enhancer(cube)
        spatial = self.student(cube)
        restored = self.restoration(spectral + spatial)
        config = self.config
        parts = {"xcorr": losses.decorrelation_loss(spectral, spatial),
                 "cos": losses.cosine_term(spectral, spatial),
                 "var": losses.variance_term(spatial),
                 "rec": losses.mse_ssim_loss(restored, cube, config.ssim_weight, config.ssim_max_val)}
        parts["loss"] = (parts["xcorr"] + config.cosine_weight * parts["cos"] + config.variance_weight * parts["var"]
                         + parts["rec"])
        return parts

    def set_train_mode(self, training: bool) -> None:
        for module in self.modules.values():
            module.train(training)
        if self.config.stage == "student":
            self.enhancer.eval()

    def step(self, rng: np.random.Generator) -> Dict[str, float]:
        """One optimiser step on a fresh batch; returns the loss parts."""
        clean = self.sampler.batch(self.config.batch, rng)
        if self.config.stage == "encoder":
            masked, mask = self.masked(clean, rng)
            parts = self.batch_losses(self.tensor(clean), self.tensor(masked), self.tensor(mask))
        elif self.config.stage == "teacher":
            pasted, labels = paste_batch(clean, rng, tuple(self.config.paste_kinds))
            parts = self.batch_losses(self.tensor(clean), self.tensor(pasted), self.tensor(labels))
        else:
            parts = self.batch_losses(self.tensor(clean))
        self.optimiser.zero_grad(set_to_none=True)
        parts["loss"].backward()
        self.optimiser.step()
        return {name: float(value.detach()) for name, value in parts.items()}

    @torch.no_grad()
    def validate(self) -> Dict[str, float]:
        """Synthetic-anomaly validation on held-out scenes: RX AUC of the enhanced tiles (and the pixel head)."""
        if self.validation is None:
            return {}
        self.set_train_mode(False)
        validation, size = self.validation, self.config.batch
        enhanced: Dict[str, List[np.ndarray]] = {"x_spe": [], "x_spa": [], "sum": [], "logits": []}
        loss_sum = 0.0
        masks = np.random.default_rng(self.config.seed + 2)  # the same masks at every validation
        for first in range(0, len(validation.clean), size):
            chunk = slice(first, first + size)
            clean, pasted = self.tensor(validation.clean[chunk]), self.tensor(validation.pasted[chunk])
            spectral = self.enhancer(pasted)
            enhanced["x_spe"].append((pasted + spectral).cpu().numpy())
            if self.config.stage == "encoder":
                masked, mask = self.masked(validation.clean[chunk], masks)
                parts = self.encoder_losses(clean, self.tensor(masked), self.tensor(mask))
            elif self.config.stage == "teacher":
                enhanced["logits"].append(self.teacher(pasted).pixel_logits.cpu().numpy())
                parts = self.teacher_losses(clean, pasted, self.tensor(validation.labels[chunk]))
            else:
                spatial = self.student(pasted)
                enhanced["x_spa"].append((pasted + spatial).cpu().numpy())
                enhanced["sum"].append((pasted + spatial + spectral).cpu().numpy())
                parts = self.student_losses(clean)
            loss_sum += float(parts["loss"]) * len(validation.clean[chunk])
        result = {"val_loss": loss_sum / len(validation.clean),
                  "val_rx_auc_x": mean_rx_auc(validation.pasted, validation.labels)}
        for name, arrays in enhanced.items():
            if not arrays:
                continue
            values = np.concatenate(arrays)
            if name == "logits":
                result["val_pixel_auc"] = roc_auc(values, validation.labels)
            else:
                result["val_rx_auc_" + name] = mean_rx_auc(values, validation.labels)
        return result

    def state(self, epoch: int) -> Dict[str, object]:
        return {"epoch": epoch, "optimiser": self.optimiser.state_dict(),
                "modules": {name: module.state_dict() for name, module in self.modules.items()}}

    def save(self, epoch: int) -> None:
        """Checkpoint after ``epoch`` (1-based), written atomically."""
        out = self.config.out
        for name, state in ((CHECKPOINT_FILE, self.state(epoch)), (ENHANCER_FILE, self.enhancer.state_dict())) + (
                ((STUDENT_FILE, self.student.state_dict()),) if self.config.stage == "student" else ()):
            temporary = os.path.join(out, name + ".partial")
            torch.save(state, temporary)
            os.replace(temporary, os.path.join(out, name))

    def resume(self) -> int:
        """Load RUN/checkpoint.pt; returns the number of epochs already done."""
        state = torch.load(os.path.join(self.config.out, CHECKPOINT_FILE), map_location=self.device)
        for name, module in self.modules.items():
            module.load_state_dict(state["modules"][name])
        self.optimiser.load_state_dict(state["optimiser"])
        return int(state["epoch"])

    def run(self, resume: bool = False, log=print) -> List[Dict[str, float]]:
        """Train the remaining epochs; per-epoch randomness depends only on (seed, epoch), so resuming is exact."""
        config = self.config
        os.makedirs(config.out, exist_ok=True)
        start = self.resume() if resume else 0
        with open(os.path.join(config.out, CONFIG_FILE), "w") as handle:
            json.dump(dataclasses.asdict(config), handle, indent=2)
        history = []
        for epoch in range(start + 1, config.epochs + 1):
            rng = np.random.default_rng([config.seed, epoch])
            torch.manual_seed(config.seed * 100003 + epoch)
            self.set_train_mode(True)
            sums: Dict[str, float] = {}
            started = time.perf_counter()
            for step in range(1, config.steps_per_epoch + 1):
                for name, value in self.step(rng).items():
                    sums[name] = sums.get(name, 0.0) + value
                seconds = (time.perf_counter() - started) / step
                means = " ".join(f"{name} {value / step:.4g}" for name, value in sums.items())
                log(f"{config.stage} epoch {epoch}/{config.epochs} step {step}/{config.steps_per_epoch} {means} "
                    f"({seconds:.2f} s/step)")
            record = {"epoch": epoch, "seconds_per_step": seconds,
                      **{name: value / config.steps_per_epoch for name, value in sums.items()}, **self.validate()}
            if len(record) > len(sums) + 2:
                log("validation: " + " ".join(f"{k} {v:.4f}" for k, v in record.items() if k.startswith("val_")))
            self.save(epoch)
            with open(os.path.join(config.out, HISTORY_FILE), "a") as handle:
                handle.write(json.dumps(record) + "\n")
            history.append(record)
        if config.epochs == 0:
            self.save(0)
        return history


def read_enhancer(run: str, bands: int) -> SpectralEnhancer:
    """The spectral branch saved by an encoder or stage-1 RUN folder."""
    config = read_config(run)
    if config["bands"] != bands:
        raise ValueError(f"The run {run} has {config['bands']} bands; this run uses {bands}.")
    enhancer = SpectralEnhancer(bands)
    enhancer.load_state_dict(torch.load(os.path.join(run, ENHANCER_FILE), map_location="cpu"))
    return enhancer


def load_enhancer(teacher: str, bands: int, seed: int) -> SpectralEnhancer:
    """The frozen spectral branch for stage 2: from an encoder or stage-1 RUN folder, or untrained ("random",
    seeded)."""
    if teacher == RANDOM_TEACHER:
        torch.manual_seed(seed)
        enhancer = SpectralEnhancer(bands)
    else:
        enhancer = read_enhancer(teacher, bands)
    return enhancer.eval()


def read_config(run: str) -> Dict[str, object]:
    path = os.path.join(run, CONFIG_FILE)
    if not os.path.exists(path):
        raise ValueError(f"{run} is not a training run folder: it has no {CONFIG_FILE}.")
    with open(path) as handle:
        return json.load(handle)


def parse_args(argv=None) -> Tuple[TrainConfig, bool]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", choices=STAGES, required=True)
    parser.add_argument("--bands", type=int, required=True)
    parser.add_argument("--band-mode", choices=BAND_MODES, default="first")
    parser.add_argument("--normalisation", choices=NORMALISATIONS, default="robust",
                        help="each tile's value range: exact min-max, or robust (outlier fences, clipped)")
    parser.add_argument("--data", required=True, help="folder of background GeoTIFF scenes (NAME_gt.tif excluded)")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--teacher", default=RANDOM_TEACHER,
                        help="stage 2: stage-1 or encoder run folder, or 'random'")
    parser.add_argument("--encoder", default="",
                        help="stage 1: encoder run folder whose stem and layer1 it starts from (default: random init)")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"default {DEFAULT_EPOCHS}; with --resume, the run's own")
    parser.add_argument("--steps-per-epoch", type=int, default=50)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--validation-scenes", default="", help="comma-separated scene names to hold out")
    parser.add_argument("--validation-count", type=int, default=1, help="scenes held out when none are named")
    parser.add_argument("--validation-tiles", type=int, default=32)
    parser.add_argument("--paste-kinds", default=",".join(PASTE_KINDS),
                        help="stage 1 synthetic anomalies, from " + ",".join(PASTE_KINDS))
    parser.add_argument("--pixel-weight", type=float, default=0.1)
    parser.add_argument("--teacher-network", default="{}",
                        help='stage 1 widths as JSON, e.g. \'{"layer2_width": 64, "freeze_teacher": false}\' '
                             "(fields of training.models.teacher.TeacherConfig)")
    parser.add_argument("--compile", choices=COMPILE_CHOICES, default="auto",
                        help=f"torch.compile the training step (auto: runs of at least {COMPILE_MIN_STEPS} steps)")
    parser.add_argument("--resume", action="store_true", help="continue RUN from its last checkpoint")
    args = parser.parse_args(argv)
    kinds = [kind for kind in args.paste_kinds.split(",") if kind]
    unknown = sorted(set(kinds) - set(PASTE_KINDS))
    if unknown or not kinds:
        parser.error(f"--paste-kinds takes {', '.join(PASTE_KINDS)}")
    try:
        network = {**dataclasses.asdict(TeacherConfig()), **json.loads(args.teacher_network)}
        TeacherConfig(**network)
    except (ValueError, TypeError) as error:
        parser.error(f"--teacher-network: {error}")
    if args.resume:
        saved = read_config(args.out)
        if args.epochs is not None:
            saved.update(epochs=args.epochs)  # a resumed run may be extended, nothing else changes
        saved.update(out=args.out)  # the folder it is in now (a run may have been copied or moved)
        return TrainConfig(**saved), True
    config = TrainConfig(
        stage=args.stage, bands=args.bands, band_mode=args.band_mode, normalisation=args.normalisation,
        data=args.data, out=args.out,
        epochs=DEFAULT_EPOCHS[args.stage] if args.epochs is None else args.epochs, steps_per_epoch=args.steps_per_epoch,
        batch=args.batch, lr=args.lr, seed=args.seed,
        device=args.device, compile=args.compile, teacher=args.teacher, encoder=args.encoder, paste_kinds=kinds,
        pixel_weight=args.pixel_weight,
        teacher_network=network,
        validation_scenes=[name for name in args.validation_scenes.split(",") if name],
        validation_count=args.validation_count, validation_tiles=args.validation_tiles)
    return config, False


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config, resume = parse_args(argv)
    Trainer(config).run(resume=resume)
    return 0


if __name__ == "__main__":
    sys.exit(main())
