"""Stage 2: the spatial student (exported at a fixed tile size).

spa_f = SE( LightSPP( trunk( false_colour(x) ) ) ), bilinearly resized to the input's H x W.
Tensors are (N, B, H, W). The trunk is a small CNN trained from scratch (spec section 8.2, option D) in place of the
published frozen ImageNet ResNet-34: stride 16, 256 channels, so a 64 px tile gives a 4x4 grid as published.
"""
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .teacher import kaiming_init

TRUNK_WIDTHS = (32, 64, 128, 256)
POOL_SIZES = (1, 2, 4)
FALSE_COLOUR_HIDDEN = 256
FUSE_HIDDEN = 128          # max(256 / 2, 16), as published
SE_REDUCTION = 8
EXPORT_TILE = 64


def uniform_init(module: nn.Module, bound: float = 0.1) -> None:
    """The published init of the student's and FRN's own convolutions: weights U(-bound, bound)."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.uniform_(layer.weight, -bound, bound)


def average_pool(features: torch.Tensor, size: int) -> torch.Tensor:
    """Adaptive average pooling to size x size.

    When the grid divides evenly (always at the export tile size) it is a plain average pool with a fixed kernel,
    which ONNX represents exactly; otherwise torch's adaptive pooling (uneven cells) is used.
    """
    height, width = features.shape[-2:]
    if height % size == 0 and width % size == 0:
        kernel = (height // size, width // size)
        return F.avg_pool2d(features, kernel, stride=kernel)
    return F.adaptive_avg_pool2d(features, size)


class SqueezeExcitation(nn.Module):
    """Channel gating: global mean -> 1x1 C -> C // r -> ReLU -> 1x1 -> C -> sigmoid -> multiply. No biases."""

    def __init__(self, channels: int, reduction: int = SE_REDUCTION):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.reduce = nn.Conv2d(channels, hidden, 1, bias=False)
        self.expand = nn.Conv2d(hidden, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.expand(F.relu(self.reduce(x.mean(dim=(2, 3), keepdim=True)))))
        return x * gate


class LightSPP(nn.Module):
    """Pyramid pooling of the trunk grid, fused to B channels at the image size, then SE gating.

    The first 1x1 fuse conv is applied to each pooled map before upsampling: a 1x1 conv commutes with bilinear
    resizing and is additive over concatenated inputs, so this equals conv(concat(upsampled)) at a fraction of the
    cost (spec section 3.1).
    """

    def __init__(self, in_channels: int, bands: int, pool_sizes: Sequence[int] = POOL_SIZES):
        super().__init__()
        self.pool_sizes = tuple(pool_sizes)
        self.fuse1 = nn.Conv2d(in_channels * len(self.pool_sizes), FUSE_HIDDEN, 1, bias=False)
        self.fuse2 = nn.Conv2d(FUSE_HIDDEN, bands, 1, bias=False)
        self.se = SqueezeExcitation(bands)
        self.in_channels = in_channels

    def forward(self, grid: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """grid: (N, 256, h, w) trunk features -> (N, B, height, width), >= 0."""
        weights = torch.split(self.fuse1.weight, self.in_channels, dim=1)
        fused = 0
        for size, weight in zip(self.pool_sizes, weights):
            pooled = F.conv2d(average_pool(grid, size), weight)
            fused = fused + F.interpolate(pooled, size=(height, width), mode="bilinear", align_corners=False)
        return self.se(F.relu(self.fuse2(F.relu(fused))))


def trunk(widths: Sequence[int] = TRUNK_WIDTHS) -> nn.Sequential:
    """Four stride-2 3x3 conv blocks (BN, ReLU) from the 3-channel false colour: total stride 16."""
    layers = []
    in_channels = 3
    for out_channels in widths:
        layers += [nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False),
                   nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]
        in_channels = out_channels
    return nn.Sequential(*layers)


class SpatialStudent(nn.Module):
    """The spatial branch: x (N, B, H, W) normalised cube -> spa_f (N, B, H, W), >= 0.

    Trained on 64 x 64 tiles and exported at that size, where the 4x4 grid pools exactly; other sizes run in
    torch (uneven adaptive pooling) but the plugin tiles scenes to the export size.
    """

    def __init__(self, bands: int, trunk_widths: Sequence[int] = TRUNK_WIDTHS):
        super().__init__()
        self.bands = bands
        self.false_colour = nn.Sequential(nn.Conv2d(bands, FALSE_COLOUR_HIDDEN, 1), nn.ReLU(inplace=True),
                                          nn.Conv2d(FALSE_COLOUR_HIDDEN, 3, 1), nn.Sigmoid())
        self.trunk = trunk(trunk_widths)
        self.spp = LightSPP(trunk_widths[-1], bands)
        kaiming_init(self.trunk)
        uniform_init(self.false_colour)
        uniform_init(self.spp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        return self.spp(self.trunk(self.false_colour(x)), height, width)
