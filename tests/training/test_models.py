"""Shapes, published state-dict layout, init and exactness properties of the training networks."""
import math

import pytest
import torch
from torch.nn import functional as F

from training.models.restoration import FeatureRestoration
from training.models.student import LightSPP, SpatialStudent, average_pool
from training.models.teacher import (ReverseDistillationTeacher, SpectralEnhancer, TeacherConfig, extra_padding,
                                     head_width)

SMALL = TeacherConfig(layer2_width=16, layer2_channels=32, layer3_width=16, layer3_channels=32,
                      bottleneck_channels=32)


def published_state_dict(bands: int) -> dict:
    """Random tensors with the shapes of the released convh.pt, enc.pt and pc.pt (conv3 left out: unused)."""
    state = {"convh.weight": torch.randn(64, bands, 1, 1)}

    def batch_norm(prefix, channels):
        state.update({f"{prefix}.weight": torch.rand(channels), f"{prefix}.bias": torch.randn(channels),
                      f"{prefix}.running_mean": torch.randn(channels), f"{prefix}.running_var": torch.rand(channels),
                      f"{prefix}.num_batches_tracked": torch.tensor(321822)})

    for block in range(3):
        prefix = f"layer1.{block}"
        state[f"{prefix}.conv1.weight"] = torch.randn(128, 64 if block == 0 else 256, 1, 1)
        batch_norm(f"{prefix}.bn1", 128)
        state[f"{prefix}.conv2.weight"] = torch.randn(128, 128, 3, 3)
        batch_norm(f"{prefix}.bn2", 128)
        state[f"{prefix}.conv3.weight"] = torch.randn(256, 128, 1, 1)
        batch_norm(f"{prefix}.bn3", 256)
    state["layer1.0.downsample.0.weight"] = torch.randn(256, 64, 1, 1)
    batch_norm("layer1.0.downsample.1", 256)
    hidden = 256 if bands > 128 else 128
    state.update({"conv1.weight": torch.randn(hidden, 256, 1, 1), "conv1.bias": torch.randn(hidden),
                  "conv2.weight": torch.randn(bands, hidden, 1, 1), "conv2.bias": torch.randn(bands)})
    return state


@pytest.mark.parametrize("bands, parameters", [(50, 676914), (100, 686564), (200, 764360)])
def test_enhancer_loads_published_layout_strictly(bands, parameters):
    enhancer = SpectralEnhancer(bands)
    enhancer.load_state_dict(published_state_dict(bands), strict=True)
    assert sum(p.numel() for p in enhancer.parameters()) == parameters
    assert head_width(bands) == (256 if bands > 128 else 128)


@pytest.mark.parametrize("height, width", [(37, 53), (5, 5), (64, 64)])
def test_enhancer_keeps_size_and_is_non_negative(height, width):
    enhancer = SpectralEnhancer(12).eval()
    with torch.no_grad():
        features = enhancer(torch.rand(2, 12, height, width) * 0.2 - 0.1)
    assert features.shape == (2, 12, height, width)
    assert features.min() >= 0


def test_enhancer_is_local_with_a_4_pixel_halo():
    """A 7x7 receptive field: the centre of a crop with a 4 px margin matches the full image."""
    enhancer = SpectralEnhancer(6).eval()
    cube = torch.rand(1, 6, 30, 30)
    with torch.no_grad():
        full = enhancer(cube)
        part = enhancer(cube[:, :, 6:24, 8:26])
    torch.testing.assert_close(part[:, :, 4:-4, 4:-4], full[:, :, 10:20, 12:22], rtol=1e-5, atol=1e-5)


def test_kaiming_fan_out_init():
    torch.manual_seed(0)
    weight = SpectralEnhancer(50).layer1[1].conv2.weight
    assert weight.std().item() == pytest.approx(math.sqrt(2.0 / (128 * 9)), rel=0.05)


def test_extra_padding_reaches_multiple_of_8():
    for size in range(12, 90):
        assert (size + 8 + extra_padding(size)) % 8 == 0 and 0 <= extra_padding(size) < 8
    assert extra_padding(64) == 0


@pytest.mark.parametrize("height, width", [(64, 64), (37, 53)])
def test_reverse_distillation_shapes(height, width):
    teacher = ReverseDistillationTeacher(10, SMALL)
    output = teacher(torch.rand(2, 10, height, width) * 0.2 - 0.1)
    for encoded, decoded in zip(output.encoder, output.decoder):
        assert encoded.shape == decoded.shape
    assert output.encoder[0].shape[-2:] == (height + 8 + extra_padding(height), width + 8 + extra_padding(width))
    assert output.reconstruction.shape == (2, 10, height, width)
    assert output.pixel_logits.shape == (2, 1, height, width)


def test_teacher_encoder_frozen_stem_and_head_trained():
    teacher = ReverseDistillationTeacher(10, SMALL).train()
    enhancer = teacher.inference_part()
    assert isinstance(enhancer, SpectralEnhancer)
    assert not any(p.requires_grad for p in enhancer.layer1.parameters())
    assert not any(p.requires_grad for p in teacher.layer3.parameters())
    assert not enhancer.layer1.training and not teacher.layer2.training and teacher.decoder1.training
    output = teacher(torch.rand(2, 10, 24, 24) * 0.2 - 0.1)
    (output.pixel_logits.mean() + output.reconstruction.pow(2).mean()).backward()
    assert enhancer.convh.weight.grad is not None and enhancer.convh.weight.grad.abs().sum() > 0
    assert enhancer.conv2.weight.grad is not None
    assert enhancer.layer1[0].conv1.weight.grad is None
    unfrozen = ReverseDistillationTeacher(10, TeacherConfig(**{**SMALL.__dict__, "freeze_teacher": False}))
    assert all(p.requires_grad for p in unfrozen.parameters())


def test_average_pool_matches_adaptive_pooling():
    features = torch.rand(2, 3, 4, 4)
    for size in (1, 2, 4):
        torch.testing.assert_close(average_pool(features, size), F.adaptive_avg_pool2d(features, size))
    uneven = torch.rand(1, 3, 7, 5)
    torch.testing.assert_close(average_pool(uneven, 2), F.adaptive_avg_pool2d(uneven, 2))


def test_light_spp_factorisation_equals_published_order():
    """conv(concat(upsampled pools)) == sum of upsampled conv(pool): the optimisation is exact."""
    spp = LightSPP(16, 9)
    grid = torch.rand(2, 16, 4, 4)
    upsampled = [F.interpolate(F.adaptive_avg_pool2d(grid, s), size=(64, 64), mode="bilinear", align_corners=False)
                 for s in (1, 2, 4)]
    fused = F.relu(spp.fuse2(F.relu(spp.fuse1(torch.cat(upsampled, dim=1)))))
    torch.testing.assert_close(spp(grid, 64, 64), spp.se(fused), rtol=1e-5, atol=1e-6)


def test_student_output():
    student = SpatialStudent(20).eval()
    with torch.no_grad():
        features = student(torch.rand(3, 20, 64, 64) * 0.2 - 0.1)
        larger = student(torch.rand(1, 20, 100, 90) * 0.2 - 0.1)
    assert features.shape == (3, 20, 64, 64) and features.min() >= 0
    assert larger.shape == (1, 20, 100, 90)
    assert student.trunk(torch.rand(1, 3, 64, 64)).shape == (1, 256, 4, 4)


@pytest.mark.parametrize("bands, parameters", [(50, 139950), (100, 558500)])
def test_restoration_network(bands, parameters):
    network = FeatureRestoration(bands)
    assert sum(p.numel() for p in network.parameters()) == parameters
    assert network(torch.rand(2, bands, 16, 16)).shape == (2, bands, 16, 16)
