"""Training losses against hand-computed values."""
import math

import pytest
import torch

from training import losses


def test_decorrelation_hand_value_one_channel():
    """a = b = [1, 2, 3, 4]: unbiased standardisation gives K = (n - 1) / n = 0.75, loss 0.5625."""
    values = torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 2, 2)
    assert losses.decorrelation_loss(values, values).item() == pytest.approx(0.5625, rel=1e-5)
    assert losses.decorrelation_loss(values, -values).item() == pytest.approx(0.5625, rel=1e-5)


def test_decorrelation_small_for_independent_large_for_copies():
    generator = torch.Generator().manual_seed(0)
    spectral = torch.rand(4, 6, 32, 32, generator=generator)
    independent = torch.rand(4, 6, 32, 32, generator=generator)
    assert losses.decorrelation_loss(spectral, independent).item() < 36 * 5.0 / 4096  # floor about C^2 / samples
    assert losses.decorrelation_loss(spectral, spectral).item() == pytest.approx(6.0, rel=1e-3)
    one_feature = spectral[:, :1].expand(-1, 6, -1, -1)
    assert losses.decorrelation_loss(one_feature, one_feature).item() == pytest.approx(36.0, rel=1e-3)


def test_decorrelation_ignores_constant_channels():
    spectral = torch.rand(2, 3, 8, 8)
    spectral[:, 1] = 0.7
    value = losses.decorrelation_loss(spectral, spectral)
    live = spectral[:, [0, 2]]
    assert value.item() == pytest.approx(losses.decorrelation_loss(live, live).item(), rel=1e-5)


def test_cosine_term_floor_and_copies():
    features = torch.rand(2, 5, 8, 8) + 0.1
    assert losses.cosine_term(features, features).item() == pytest.approx(2.0, rel=1e-6)
    first = torch.zeros(2, 4, 8, 8)
    first[:, :2] = 1.0
    second = torch.zeros(2, 4, 8, 8)
    second[:, 2:] = 1.0
    assert losses.cosine_term(first, second).item() == pytest.approx(1.0, abs=1e-7)


def test_variance_term():
    assert losses.variance_term(torch.zeros(2, 3, 4, 4)).item() == pytest.approx(1.0)
    # Each image alternates 0 and 4: unbiased variance 4 * 16 / 15 > 1, so only the L1 mean (2) remains.
    alternating = torch.zeros(2, 3, 4, 4)
    alternating[..., ::2] = 4.0
    assert losses.variance_term(alternating).item() == pytest.approx(2.0)
    # Half the pixels sqrt(2): unbiased variance 0.5 * 16 / 15 = 8 / 15, hinge 7 / 15, plus L1 mean sqrt(2) / 2.
    half = torch.zeros(1, 1, 4, 4)
    half[..., ::2] = math.sqrt(2.0)
    expected = (1 - 8 / 15) + math.sqrt(2.0) / 2
    assert losses.variance_term(half).item() == pytest.approx(expected, rel=1e-5)


def test_ssim_identical_is_one():
    images = torch.rand(2, 3, 16, 16) * 0.2 - 0.1
    torch.testing.assert_close(losses.ssim_map(images, images), torch.ones_like(images))
    assert losses.ssim_loss(images, images).item() == pytest.approx(0.0, abs=1e-6)


def test_ssim_constant_images_hand_value():
    """Constant images a and b: SSIM = (2ab + C1) / (a^2 + b^2 + C1) (the contrast term is C2 / C2)."""
    a, b = 0.6, 0.2
    value = losses.ssim_map(torch.full((1, 1, 9, 9), a, dtype=torch.float64),
                           torch.full((1, 1, 9, 9), b, dtype=torch.float64))
    c1 = 0.01 ** 2
    assert value.mean().item() == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-5)


def test_ssim_max_val_sets_sensitivity():
    generator = torch.Generator().manual_seed(1)
    clean = torch.rand(1, 2, 16, 16, generator=generator) * 0.2 - 0.1
    noisy = clean + 0.02 * torch.randn(1, 2, 16, 16, generator=generator)
    weak = losses.ssim_loss(noisy, clean, max_val=1.0)
    strong = losses.ssim_loss(noisy, clean, max_val=0.2)
    assert 0 < weak.item() < strong.item() <= 1
    window = losses.gaussian_window()
    assert window.shape == (5, 5) and window.sum().item() == pytest.approx(1.0)
    assert window[2, 2] / window[2, 3] == pytest.approx(math.exp(1 / (2 * 1.5 ** 2)))


def test_mse_ssim_loss_combines():
    x = torch.rand(1, 2, 8, 8)
    y = torch.rand(1, 2, 8, 8)
    expected = torch.mean((x - y) ** 2) + 0.01 * losses.ssim_loss(x, y)
    assert losses.mse_ssim_loss(x, y).item() == pytest.approx(expected.item(), rel=1e-6)


def test_reverse_distillation_loss():
    features = [torch.rand(2, 4, 8, 8), torch.rand(2, 6, 4, 4)]
    assert losses.reverse_distillation_loss(features, features).item() == pytest.approx(0.0, abs=1e-6)
    assert losses.reverse_distillation_loss(features, [-f for f in features]).item() == pytest.approx(4.0)


def test_pixel_bce():
    logits = torch.zeros(1, 1, 4, 4)
    assert losses.pixel_bce(logits, torch.ones_like(logits)).item() == pytest.approx(math.log(2.0))
