"""Training losses of both stages. Tensors are (N, C, H, W) unless stated; every loss returns a scalar tensor.

Encoder pretraining (optional, before stage 1): ``masked_mse``.
Stage 1 (reverse distillation): ``reverse_distillation_loss``, ``pixel_bce``, ``reconstruction_mse``.
Stage 2 (spec section 3.3): ``decorrelation_loss``, ``cosine_term``, ``variance_term``, ``mse_ssim_loss``.
"""
from typing import Sequence

import torch
from torch.nn import functional as F

STANDARDISE_EPSILON = 1e-6
COSINE_EPSILON = 1e-8


def channel_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, H, W) cosine similarity of the channel vectors of a and b at each pixel."""
    return F.cosine_similarity(a, b, dim=1, eps=COSINE_EPSILON)


def reverse_distillation_loss(encoder: Sequence[torch.Tensor], decoder: Sequence[torch.Tensor]) -> torch.Tensor:
    """Sum over feature levels of the pixel mean of 1 - cos(e_k, d_k) over channels."""
    return sum(torch.mean(1.0 - channel_cosine(e, d)) for e, d in zip(encoder, decoder))


def pixel_bce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of (N, 1, H, W) pixel logits against (N, 1, H, W) labels (1 = pasted anomaly)."""
    return F.binary_cross_entropy_with_logits(logits, labels)


def reconstruction_mse(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(reconstruction, target)


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the pixels where the (N, 1, H, W) mask is 1, all channels."""
    squared = (prediction - target) ** 2 * mask
    return squared.sum() / (mask.sum() * prediction.shape[1]).clamp(min=1.0)


def standardise(features: torch.Tensor) -> torch.Tensor:
    """(N, C, L) standardised per channel over batch and pixels jointly, with the unbiased std."""
    mean = features.mean(dim=(0, 2), keepdim=True)
    std = features.std(dim=(0, 2), keepdim=True, unbiased=True)
    return (features - mean) / (std + STANDARDISE_EPSILON)


def cross_correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(C, C) matrix K_ij = mean over batch and pixels of standardised a_i times standardised b_j."""
    n, c = a.shape[:2]
    a_hat = standardise(a.reshape(n, c, -1))
    b_hat = standardise(b.reshape(n, b.shape[1], -1))
    samples = a_hat.shape[0] * a_hat.shape[2]
    return torch.einsum("nip,njp->ij", a_hat, b_hat) / samples


def decorrelation_loss(spectral: torch.Tensor, spatial: torch.Tensor) -> torch.Tensor:
    """Sum of squares of all entries of the spectral/spatial cross-correlation matrix (weight 1 in stage 2)."""
    return torch.sum(cross_correlation(spectral, spatial) ** 2)


def cosine_term(spectral: torch.Tensor, spatial: torch.Tensor) -> torch.Tensor:
    """1 + mean over batch and pixels of the channel cosine; with non-negative features its floor is 1."""
    return 1.0 + torch.mean(channel_cosine(spectral, spatial))


def variance_term(spatial: torch.Tensor) -> torch.Tensor:
    """mean_c relu(1 - v_c) + mean |S|, v_c the unbiased spatial variance per image and channel, batch-averaged."""
    n, c = spatial.shape[:2]
    variance = spatial.reshape(n, c, -1).var(dim=2, unbiased=True).mean(dim=0)
    return torch.mean(F.relu(1.0 - variance)) + torch.mean(torch.abs(spatial))


def gaussian_window(size: int = 5, sigma: float = 1.5) -> torch.Tensor:
    """(size, size) normalised Gaussian kernel."""
    coordinates = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    profile = torch.exp(-coordinates ** 2 / (2 * sigma ** 2))
    profile = profile / profile.sum()
    return torch.outer(profile, profile)


def ssim_map(x: torch.Tensor, y: torch.Tensor, max_val: float = 1.0, window_size: int = 5,
             sigma: float = 1.5) -> torch.Tensor:
    """(N, C, H, W) SSIM per pixel and channel: Gaussian local statistics with reflect "same" padding,
    C1 = (0.01 max_val)^2, C2 = (0.03 max_val)^2."""
    channels = x.shape[1]
    window = gaussian_window(window_size, sigma).to(dtype=x.dtype, device=x.device)
    window = window.expand(channels, 1, window_size, window_size)
    pad = window_size // 2

    def local_mean(values: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(values, (pad, pad, pad, pad), mode="reflect"), window, groups=channels)

    mu_x, mu_y = local_mean(x), local_mean(y)
    var_x = local_mean(x * x) - mu_x ** 2
    var_y = local_mean(y * y) - mu_y ** 2
    cov_xy = local_mean(x * y) - mu_x * mu_y
    c1, c2 = (0.01 * max_val) ** 2, (0.03 * max_val) ** 2
    return ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))


def ssim_loss(x: torch.Tensor, y: torch.Tensor, max_val: float = 1.0, window_size: int = 5) -> torch.Tensor:
    """Mean of clamp((1 - SSIM) / 2, 0, 1); 0 for identical images."""
    return torch.mean(torch.clamp((1.0 - ssim_map(x, y, max_val, window_size)) / 2.0, 0.0, 1.0))


def mse_ssim_loss(reconstruction: torch.Tensor, target: torch.Tensor, ssim_weight: float = 0.01,
                  max_val: float = 1.0) -> torch.Tensor:
    """MSE + ssim_weight * SSIM loss (published: weight 0.01, max_val 1.0, window 5)."""
    return F.mse_loss(reconstruction, target) + ssim_weight * ssim_loss(reconstruction, target, max_val)
