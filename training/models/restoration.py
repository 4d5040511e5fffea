"""Stage 2 training only: the feature restoration network (FRN) that maps spe_f + spa_f back to the cube.

Tensors are (N, B, H, W). Body: three times [residual block -> channel attention] (the published code's order),
then a 1x1 conv with bias.
"""
import torch
from torch import nn
from torch.nn import functional as F

from .student import SqueezeExcitation, uniform_init

REPEATS = 3


class ResidualBlock(nn.Module):
    """3x3 conv -> BN -> ReLU -> 3x3 conv -> BN, plus identity, then ReLU (no conv biases)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + x)


class FeatureRestoration(nn.Module):
    """features (N, B, H, W) -> reconstruction of the cube (N, B, H, W), any sign."""

    def __init__(self, bands: int):
        super().__init__()
        body = []
        for _ in range(REPEATS):
            body += [ResidualBlock(bands), SqueezeExcitation(bands)]
        self.body = nn.Sequential(*body)
        self.out = nn.Conv2d(bands, bands, 1)
        uniform_init(self)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(features))
