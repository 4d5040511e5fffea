"""Stage 1: the spectral enhancer (exported) and the reverse-distillation network that trains it.

Tensors are (N, B, H, W): batch, model bands, rows, columns. Every module accepts any H, W >= 12 (the enhancer alone
accepts H, W >= 5): the training network pads to a multiple of 8 from the actual input size (spec D1).
"""
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F

STEM_CHANNELS = 64
LAYER1_WIDTH = 128
LAYER1_CHANNELS = 256
LAYER1_BLOCKS = 3
HALO = 4  # reflect padding around the stem; the enhancer's receptive field is 7x7, so 4 px of context suffice


def head_width(bands: int) -> int:
    """Hidden width of the spectral head, as published: 256 above 128 bands, else 128."""
    return 256 if bands > 128 else 128


def kaiming_init(module: nn.Module) -> None:
    """ResNet-style init: convolutions kaiming-normal (fan-out, ReLU), zero biases, BN weight 1 and bias 0."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck: 1x1 -> 3x3 (stride here) -> 1x1, BN after each, projection shortcut if needed."""

    def __init__(self, in_channels: int, width: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class UpBottleneck(Bottleneck):
    """Decoder bottleneck: like ``Bottleneck`` but a stride-2 stage upsamples with 2x2 transposed convolutions
    (in the middle conv and in the shortcut), the mirror of the encoder as in reverse distillation. The shortcut
    keeps Bottleneck's attribute name ``downsample`` so that both share one forward."""

    def __init__(self, in_channels: int, width: int, out_channels: int, upsample: bool = False):
        super().__init__(in_channels, width, out_channels)
        if upsample:
            self.conv2 = nn.ConvTranspose2d(width, width, 2, stride=2, bias=False)
            self.downsample = nn.Sequential(nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2, bias=False),
                                            nn.BatchNorm2d(out_channels))


def make_stage(block, in_channels: int, width: int, out_channels: int, blocks: int, **first) -> nn.Sequential:
    """``blocks`` blocks; only the first changes resolution (keyword ``stride`` or ``upsample``) or width."""
    layers = [block(in_channels, width, out_channels, **first)]
    layers += [block(out_channels, width, out_channels) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class SpectralEnhancer(nn.Module):
    """The exported spectral branch (the pruned FEN): spe_f = head(crop(layer1(stem(reflect_pad(x))))).

    Input x: (N, B, H, W) normalised cube, H, W >= 5. Output spe_f: (N, B, H, W), >= 0. State-dict keys follow the
    published checkpoints: ``convh.weight``, ``layer1.*`` (a wide-ResNet layer1), ``conv1.*``, ``conv2.*``.
    """

    def __init__(self, bands: int):
        super().__init__()
        self.bands = bands
        self.convh = nn.Conv2d(bands, STEM_CHANNELS, 1, bias=False)
        self.layer1 = make_stage(Bottleneck, STEM_CHANNELS, LAYER1_WIDTH, LAYER1_CHANNELS, LAYER1_BLOCKS)
        hidden = head_width(bands)
        self.conv1 = nn.Conv2d(LAYER1_CHANNELS, hidden, 1)
        self.conv2 = nn.Conv2d(hidden, bands, 1)
        kaiming_init(self)

    def stem(self, x: torch.Tensor, extra_rows: int = 0, extra_columns: int = 0) -> torch.Tensor:
        """(N, B, H, W) -> (N, 64, H + 8 + extra_rows, W + 8 + extra_columns); extras pad bottom/right."""
        padded = F.pad(x, (HALO, HALO + extra_columns, HALO, HALO + extra_rows), mode="reflect")
        return self.convh(padded)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """(N, 256, H, W) layer1 features -> (N, B, H, W) spectral features, >= 0."""
        return F.relu(self.conv2(F.relu(self.conv1(features))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        features = self.layer1(self.stem(x))
        return self.head(features[:, :, HALO:HALO + height, HALO:HALO + width])


class MaskedSpectrumModel(nn.Module):
    """Self-supervised pretraining of the enhancer's stem and layer1 on background tiles: predict the spectra of
    masked pixels from their 7 x 7 neighbourhood through a linear 1 x 1 read-out of layer1, so that layer1 learns
    how background spectra follow from their surroundings instead of staying at its random init (FINDINGS 1).
    Only the stem and layer1 carry over (``inference_part``); the read-out is discarded.
    """

    def __init__(self, bands: int):
        super().__init__()
        self.enhancer = SpectralEnhancer(bands)  # first, so that a seed gives the untrained twin's weights
        # Zero-initialised: a kaiming read-out of layer1's O(1) features predicts spectra some 100 times the
        # [-0.1, 0.1] data range, and 200 steps went to undoing that scale (validation loss above predicting 0).
        self.readout = nn.Conv2d(LAYER1_CHANNELS, bands, 1)
        nn.init.zeros_(self.readout.weight)
        nn.init.zeros_(self.readout.bias)

    def inference_part(self) -> SpectralEnhancer:
        return self.enhancer

    def forward(self, masked: torch.Tensor) -> torch.Tensor:
        """masked: (N, B, H, W) tiles with masked pixels zeroed -> (N, B, H, W) predicted spectra."""
        height, width = masked.shape[-2:]
        features = self.enhancer.layer1(self.enhancer.stem(masked))
        return self.readout(features[:, :, HALO:HALO + height, HALO:HALO + width])


@dataclass
class TeacherConfig:
    """Widths of the stage-1 training network around the enhancer (narrow by default: CPU training)."""

    layer2_width: int = 32          # published WRN-50-2: 256
    layer2_channels: int = 128      # 512
    layer2_blocks: int = 1          # 4
    layer3_width: int = 64          # 512
    layer3_channels: int = 256      # 1024
    layer3_blocks: int = 1          # 6
    bottleneck_channels: int = 256  # OCBE output, published 2048
    bottleneck_blocks: int = 1      # 3
    decoder_blocks: int = 1         # per decoder stage; published 3/4/6
    decoder1_width: int = 64        # the full-resolution decoder stage (output 256 like e1); published 128
    freeze_teacher: bool = True     # teacher layers 1-3 stay at their (random, kaiming) init, in eval mode


def extra_padding(size: int) -> int:
    """Bottom/right padding that makes size + 2 * HALO a multiple of 8 (three stride-2 stages)."""
    return (8 - (size + 2 * HALO) % 8) % 8


def conv_bn_relu(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class OneClassBottleneck(nn.Module):
    """Reverse distillation's one-class bottleneck embedding: fuse e1, e2, e3 at 1/8 scale, compress to 1/16."""

    def __init__(self, config: TeacherConfig):
        super().__init__()
        c2, c3 = config.layer2_channels, config.layer3_channels
        self.from_e1 = nn.Sequential(conv_bn_relu(LAYER1_CHANNELS, c2, 2), conv_bn_relu(c2, c3, 2))
        self.from_e2 = conv_bn_relu(c2, c3, 2)
        self.fuse = make_stage(Bottleneck, 3 * c3, config.bottleneck_channels // 2, config.bottleneck_channels,
                               config.bottleneck_blocks, stride=2)

    def forward(self, e1: torch.Tensor, e2: torch.Tensor, e3: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([self.from_e1(e1), self.from_e2(e2), e3], dim=1))


@dataclass
class TeacherOutput:
    """Everything one stage-1 forward pass produces; e_k/d_k are on the padded grid, the rest (N, ., H, W)."""

    encoder: List[torch.Tensor]   # e1 (N,256,Hp,Wp), e2 (N,c2,Hp/2,Wp/2), e3 (N,c3,Hp/4,Wp/4)
    decoder: List[torch.Tensor]   # d1, d2, d3 with the same shapes
    reconstruction: torch.Tensor  # (N, B, H, W)
    pixel_logits: torch.Tensor    # (N, 1, H, W)


class ReverseDistillationTeacher(nn.Module):
    """Stage-1 training network: frozen teacher encoder (stem is trained), one-class bottleneck, student decoder,
    de_ConvH reconstruction and the pixel classifier on |head(d1) - head(e1)|.

    ``inference_part()`` is the ``SpectralEnhancer`` (stem, layer1, head conv1/conv2) that gets exported.
    """

    def __init__(self, bands: int, config: Optional[TeacherConfig] = None):
        super().__init__()
        self.config = config = config or TeacherConfig()
        self.enhancer = SpectralEnhancer(bands)
        self.layer2 = make_stage(Bottleneck, LAYER1_CHANNELS, config.layer2_width, config.layer2_channels,
                                 config.layer2_blocks, stride=2)
        self.layer3 = make_stage(Bottleneck, config.layer2_channels, config.layer3_width, config.layer3_channels,
                                 config.layer3_blocks, stride=2)
        self.bottleneck = OneClassBottleneck(config)
        self.decoder3 = make_stage(UpBottleneck, config.bottleneck_channels, config.layer3_width,
                                   config.layer3_channels, config.decoder_blocks, upsample=True)
        self.decoder2 = make_stage(UpBottleneck, config.layer3_channels, config.layer2_width,
                                   config.layer2_channels, config.decoder_blocks, upsample=True)
        self.decoder1 = make_stage(UpBottleneck, config.layer2_channels, config.decoder1_width, LAYER1_CHANNELS,
                                   config.decoder_blocks, upsample=True)
        self.de_convh = nn.Conv2d(LAYER1_CHANNELS, bands, 1, bias=False)
        self.conv3 = nn.Conv2d(bands, 1, 1)
        kaiming_init(self)
        if config.freeze_teacher:
            for module in self.teacher_modules():
                module.requires_grad_(False)

    def teacher_modules(self) -> Tuple[nn.Module, ...]:
        """The frozen teacher encoder: layers 1-3 (the stem is trained)."""
        return self.enhancer.layer1, self.layer2, self.layer3

    def train(self, mode: bool = True) -> "ReverseDistillationTeacher":
        super().train(mode)
        if self.config.freeze_teacher:
            for module in self.teacher_modules():
                module.eval()  # BN keeps its running statistics: re-estimating them hurt (FINDINGS 1)
        return self

    def inference_part(self) -> SpectralEnhancer:
        """The exported spectral branch: this network's stem, layer1 and head conv1/conv2 (shared, not a copy)."""
        return self.enhancer

    def forward(self, x: torch.Tensor) -> TeacherOutput:
        """x: (N, B, H, W) normalised (possibly pasted) tiles, H, W >= 12."""
        height, width = x.shape[-2:]
        rows, columns = extra_padding(height), extra_padding(width)
        e1 = self.enhancer.layer1(self.enhancer.stem(x, rows, columns))
        e2 = self.layer2(e1)
        e3 = self.layer3(e2)
        d3 = self.decoder3(self.bottleneck(e1, e2, e3))
        d2 = self.decoder2(d3)
        d1 = self.decoder1(d2)

        def crop(tensor: torch.Tensor) -> torch.Tensor:
            return tensor[:, :, HALO:HALO + height, HALO:HALO + width]

        head = self.enhancer.head
        logits = self.conv3(torch.abs(head(crop(d1)) - head(crop(e1))))
        return TeacherOutput([e1, e2, e3], [d1, d2, d3], crop(self.de_convh(d1)), logits)
