"""IFKD: EDE (eq. 1-2), FDR (eq. 3-8), HSM (eq. 9-11), the losses (eq. 12-13) and their tools."""
import importlib.util
import os.path as osp
import random

import mmcv
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet.structures import DetDataSample
from mmengine.structures import PixelData

import ifkd_mm  # noqa: F401  (registries)
from ifkd_mm.distillation.base import DistillBatch
from ifkd_mm.distillation.ifkd import (ExternalDisturbanceEnhancement,
                                       FrequencyDomainReconstruction, IFKDFeatureLoss,
                                       IFKDHeadLoss)
from ifkd_mm.distillation.ifkd import fdr as fdr_lib
from ifkd_mm.distillation.ifkd import hsm as hsm_lib
from ifkd_mm.distillation.ifkd.losses import HSM_CACHE_KEY
from ifkd_mm.registry import MODELS, ROTATED_MODELS

from .conftest import REPO

MEAN = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """Run this module's small tensors on one thread: measured 2.5x faster than two here."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def load_tool(name: str):
    """A tool script under tools/ifkd as a module."""
    path = osp.join(REPO, 'tools', 'ifkd', f'{name}.py')
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_batch(images, canvas, priors=None) -> DistillBatch:
    """A batch of RGB [0, 255] images (3, h, w), padded to ``canvas``, optional uint8 priors."""
    pixels = torch.zeros(len(images), 3, *canvas)
    samples = []
    for i, image in enumerate(images):
        h, w = image.shape[-2:]
        pixels[i, :, :h, :w] = image
        sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                             pad_shape=tuple(canvas), img_path=f'{i}.png'))
        if priors is not None:
            sample.gt_sem_seg = PixelData(sem_seg=priors[i])
        samples.append(sample)
    return DistillBatch(inputs=(pixels - MEAN) / STD, data_samples=samples, mean=MEAN, std=STD)


def pyramid(batch: int, channels: int, sizes, requires_grad: bool = False, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    levels = [torch.randn(batch, channels, *size, generator=gen) for size in sizes]
    return [level.requires_grad_(requires_grad) for level in levels]


def smooth_features(batch: int, channels: int, size, seed: int, sigma: float = 3.0):
    """Gaussian-blurred white noise of unit standard deviation: spatially smooth, like FPN maps."""
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(batch * channels, 1, *size, generator=gen)
    radius = int(3 * sigma)
    kernel = torch.exp(-torch.arange(-radius, radius + 1.0) ** 2 / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    padded = F.pad(noise, (radius, ) * 4, mode='replicate')
    blurred = F.conv2d(F.conv2d(padded, kernel.view(1, 1, -1, 1)), kernel.view(1, 1, 1, -1))
    blurred = blurred.view(batch, channels, *size)
    return blurred / blurred.std()


# ------------------------------------------- independent float64 references (numpy, no geoopt)
def ref_mobius_add(x, y, c):
    """Möbius addition ``x (+)_c y`` along the last axis (eq. 9)."""
    xy, x2, y2 = ((a * b).sum(-1, keepdims=True) for a, b in ((x, y), (x, x), (y, y)))
    return ((1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y) / (1 + 2 * c * xy + c ** 2 * x2 * y2)


def ref_poincare_distance(x, y, c):
    """``2/sqrt(c) artanh(sqrt(c) |(-x) (+)_c y|)`` along the last axis (eq. 10)."""
    return 2 / np.sqrt(c) * np.arctanh(np.sqrt(c) * np.linalg.norm(ref_mobius_add(-x, y, c),
                                                                   axis=-1))


def ref_hsm_mask(teacher, student, c=1.0, eps=1e-3):
    """HSM of (B, C, H, W) arrays along C: divide by the teacher's mean norm, clip at
    ``4 / sqrt(c)``, expmap0, distance, ``(d + eps) / (mean d + eps)``; returns (mask, distance),
    each (B, H, W)."""
    clip_radius = 4 / np.sqrt(c)
    t, s = np.moveaxis(teacher, 1, -1), np.moveaxis(student, 1, -1)
    scale = np.linalg.norm(t, axis=-1).mean(axis=(1, 2))[:, None, None, None]

    def to_ball(v):
        v = v / scale
        norm = np.linalg.norm(v, axis=-1, keepdims=True)
        clipped = np.minimum(norm, clip_radius)
        return np.tanh(np.sqrt(c) * clipped) / np.sqrt(c) * v / norm

    distance = ref_poincare_distance(to_ball(t), to_ball(s), c)
    return (distance + eps) / (distance.mean(axis=(1, 2), keepdims=True) + eps), distance


def ref_bilinear(n_in: int, n_out: int):
    """(n_out, n_in) matrix of 1-D bilinear resizing, half-pixel centres (align_corners=False)."""
    matrix = np.zeros((n_out, n_in))
    for i in range(n_out):
        src = max((i + 0.5) * n_in / n_out - 0.5, 0.0)
        i0 = min(int(np.floor(src)), n_in - 1)
        matrix[i, i0] += 1 - (src - i0)
        matrix[i, min(i0 + 1, n_in - 1)] += src - i0
    return matrix


def ref_resize(x, size):
    """Bilinear resize of the last two axes of ``x`` to ``size``."""
    return ref_bilinear(x.shape[-2], size[0]) @ x @ ref_bilinear(x.shape[-1], size[1]).T


def ref_mirror_index(n: int):
    """Centred index of ``-k`` for the frequency ``k = i - n // 2`` at centred index ``i``."""
    return (-(np.arange(n) - n // 2) + n // 2) % n


def ref_dft(n: int):
    """(n, n) DFT matrix with rows in centred frequency order ``k = i - n // 2``."""
    return np.exp(-2j * np.pi * np.outer(np.arange(n) - n // 2, np.arange(n)) / n)


def ref_spectrum(x):
    return ref_dft(x.shape[-2]) @ x @ ref_dft(x.shape[-1]).T


def ref_inverse_spectrum(spec):
    h, w = spec.shape[-2:]
    return (ref_dft(h).conj().T @ spec @ ref_dft(w).conj() / (h * w)).real


def ref_fdr(feature, ratio, frs, gain):
    """FDR (eq. 3-8) of a (C, H, W) array by explicit DFT sums: ``g = f - f_l + f_l M_FRS``."""
    h, w = feature.shape[-2:]
    ku, kv = np.abs(np.arange(h) - h // 2), np.abs(np.arange(w) - w // 2)
    window = (np.maximum(ku[:, None], kv[None, :]) <= ratio * min(h, w) / 2).astype(float)
    low = ref_inverse_spectrum(ref_spectrum(feature) * window)
    return ref_inverse_spectrum(ref_spectrum(feature - low + low * frs) * gain)


def ref_gain(raw, size, bound):
    """``1 + b tanh(w)``, ``w`` resized and averaged with its mirror ``w(-k)``."""
    resized = ref_resize(raw, size)
    mirrored = resized[:, ref_mirror_index(size[0])][:, :, ref_mirror_index(size[1])]
    return 1 + bound * np.tanh((resized + mirrored) / 2)


# ---------------------------------------------------------------- HSM (eq. 9-11)
@pytest.mark.parametrize('c', [0.5, 1.0, 2.0])
def test_hsm_geoopt_distance_matches_a_hand_written_float64_formula(c):
    gen = torch.Generator().manual_seed(1)
    x, y = (torch.randn(2, 64, 7, generator=gen, dtype=torch.float64) for _ in range(2))
    radius = torch.rand(2, 64, 1, generator=gen, dtype=torch.float64) * 0.9 / c ** 0.5
    x, y = x / x.norm(dim=-1, keepdim=True) * radius, y / y.norm(dim=-1, keepdim=True) * radius
    geo = hsm_lib.hyperbolic_distance(x, y, c, dim=-1)
    np.testing.assert_allclose(geo.numpy(), ref_poincare_distance(x.numpy(), y.numpy(), c),
                               rtol=1e-9)
    torch.testing.assert_close(hsm_lib.hyperbolic_distance(y, x, c, dim=-1), geo)
    zero = hsm_lib.hyperbolic_distance(x, x, c, dim=-1)
    torch.testing.assert_close(zero, torch.zeros_like(zero), atol=1e-6, rtol=0)
    assert (geo > 0).all()


@pytest.mark.parametrize('c', [0.5, 1.0, 2.0])
def test_hsm_mask_matches_an_independent_distance_along_channels(c):
    """(B, C, H, W) with C, H, W all different: the distance runs along channels only."""
    gen = torch.Generator().manual_seed(2)
    teacher = torch.randn(2, 6, 5, 7, generator=gen, dtype=torch.float64) * 16 / 6 ** 0.5
    student = 1.3 * teacher + 6 * torch.randn(2, 6, 5, 7, generator=gen, dtype=torch.float64)
    teacher[0, :, 2, 3] *= 8  # beyond the clip radius of 4 / sqrt(c) teacher norms
    mask = MODELS.build(dict(type='HyperbolicSimilarityMask', c=c))([teacher], [student])[0]
    expected, distance = ref_hsm_mask(teacher.numpy(), student.numpy(), c=c)
    assert mask.shape == (2, 1, 5, 7) and mask.dtype == torch.float64
    np.testing.assert_allclose(mask[:, 0].numpy(), expected, rtol=1e-9)
    np.testing.assert_allclose(hsm_lib.hyperbolic_feature_distance(teacher, student, c)[:, 0],
                               distance, rtol=1e-9)
    assert expected.std() > 0.1
    for factor in (1e-2, 1e3):  # a level's common scale does not change its mask
        torch.testing.assert_close(hsm_lib.hyperbolic_similarity_mask(
            factor * teacher, factor * student, c), mask)


def test_hsm_responds_to_a_change_of_magnitude_alone():
    """Student = s x teacher inside a region: FPN-like norms (about 16), smooth features."""
    teacher = smooth_features(1, 32, (12, 15), seed=3) * 16 / 32 ** 0.5
    norm = teacher.norm(dim=1, keepdim=True).double()
    unit = norm / norm.mean()  # the teacher's norm in units of its mean norm
    assert 14 < norm.mean() < 18
    inside = torch.zeros(1, 1, 12, 15, dtype=torch.bool)
    inside[..., 3:7, 4:10] = True
    reference = torch.zeros_like(inside)
    reference[..., 8:11, 1:4] = True  # student = 2 x teacher there, for every s
    module = MODELS.build(dict(type='HyperbolicSimilarityMask'))
    response = {}
    for s in (0.25, 0.5, 0.75, 1.25, 1.5, 2.0, 3.0):
        factor = torch.where(inside, s, torch.where(reference, 2.0, 1.0))
        student = teacher * factor
        # along a ray through the ball's centre exp0 keeps distances: 2 |s - 1| teacher norms
        # (up to the clip at 4 teacher norms)
        distance = hsm_lib.hyperbolic_feature_distance(teacher, student)
        expected = 2 * ((factor * unit).clamp(max=4) - unit.clamp(max=4)).abs()
        torch.testing.assert_close(distance, expected, rtol=1e-6, atol=1e-9)
        mask = module([teacher], [student])[0]
        assert mask[~(inside | reference)].max() < 0.01  # where nothing changed
        assert mask[inside].min() > 0.1 and mask[reference].min() > 0.1
        response[s] = (mask[inside].mean() / mask[reference].mean()).item()
    shrink = [response[s] for s in (0.75, 0.5, 0.25)]
    grow = [response[s] for s in (1.25, 1.5, 2.0, 3.0)]
    assert shrink == sorted(shrink) and grow == sorted(grow)  # monotone in |s - 1|
    assert shrink[-1] > 2 * shrink[0] and grow[-1] > 2 * grow[0]  # and far from constant


def test_hsm_mask_is_detached_mean_one_and_larger_where_features_differ():
    teacher = torch.randn(2, 16, 6, 8)
    student = teacher.clone()
    student[:, :, 1:3, 2:5] += 3 * torch.randn(2, 16, 2, 3)
    student.requires_grad_(True)
    module = MODELS.build(dict(type='HyperbolicSimilarityMask', c=1.0))
    mask = module([teacher], [student])[0]
    assert mask.shape == (2, 1, 6, 8) and not mask.requires_grad and mask.dtype == torch.float32
    torch.testing.assert_close(mask.mean(dim=(1, 2, 3)), torch.ones(2))
    inside = mask[:, :, 1:3, 2:5]
    outside = mask.clone()
    outside[:, :, 1:3, 2:5] = float('nan')
    assert inside.min() > 10 * outside.nan_to_num(0).amax()
    equal = module([teacher], [teacher])[0]  # equal features: all ones, not 0/0
    torch.testing.assert_close(equal, torch.ones_like(equal))


# ---------------------------------------------------------------- FDR (eq. 3-8)
def test_fdr_window_is_the_square_of_eq4_around_the_shifted_zero_frequency():
    window = fdr_lib.low_pass_window(8, 10, 0.5)  # radius 0.5 * 8 / 2 = 2 around (4, 5)
    expected = torch.zeros(8, 10)
    expected[2:7, 3:8] = 1
    torch.testing.assert_close(window, expected)
    spec = fdr_lib.spectrum(torch.ones(1, 1, 8, 10))
    assert spec[0, 0, 4, 5].real == 80 and spec.abs().sum() == 80  # DC at (H//2, W//2)
    assert fdr_lib.low_pass_window(5, 5, 10.0).all()


@pytest.mark.parametrize('n,kept', [(9, [4]), (9, [2, 3, 4, 5, 6]), (8, [2, 3, 4, 5, 6]),
                                     (8, list(range(8))), (7, list(range(7))), (6, [0])])
def test_fdr_band_basis_is_orthonormal_and_spans_the_fft_band(n, kept):
    """``U U^T`` equals ``real(iDFT(mask DFT))`` written out as a sum of cosines; (6, [0]) keeps
    only the Nyquist frequency -3 of an even length."""
    mask = torch.zeros(n)
    mask[kept] = 1
    basis = fdr_lib.band_basis(mask)
    assert basis.shape == (n, len(kept)) and basis.dtype == torch.float64
    torch.testing.assert_close(basis.T @ basis, torch.eye(len(kept), dtype=torch.float64))
    x = np.arange(n)
    frequencies = np.array(kept) - n // 2
    expected = np.cos(2 * np.pi * frequencies[None, None, :] * (x[:, None] - x[None, :])[..., None]
                      / n).sum(-1) / n
    np.testing.assert_allclose((basis @ basis.T).numpy(), expected, atol=1e-12)


def test_fdr_low_band_equals_the_fft_round_trip_and_refuses_other_windows():
    f = torch.randn(2, 3, 9, 12, dtype=torch.float64)
    for ratio in (0.0, 0.3, 0.7, 2.0):
        window = fdr_lib.low_pass_window(9, 12, ratio).double()
        round_trip = fdr_lib.inverse_spectrum(fdr_lib.spectrum(f) * window)
        torch.testing.assert_close(fdr_lib.low_band(f, window), round_trip)
    disc = torch.zeros(9, 12)
    disc[3:6, 5:8] = 1
    disc[3, 5] = 0
    with pytest.raises(ValueError, match='product of one band per axis'):
        fdr_lib.low_band(f, disc)
    with pytest.raises(ValueError, match='symmetric in the frequency'):
        fdr_lib.band_basis(torch.tensor([0., 0., 1., 1., 0.]))


def test_fdr_is_identity_with_full_window_unit_frs_and_unit_filter():
    f = torch.randn(2, 4, 7, 9)
    out = fdr_lib.frequency_reconstruct(f, fdr_lib.low_pass_window(7, 9, 10.0),
                                        torch.ones(2, 1, 7, 9), torch.ones(4, 7, 9))
    torch.testing.assert_close(out, f, atol=1e-5, rtol=1e-5)


def test_fdr_frs_mask_reweights_only_the_low_frequency_part():
    f, window = torch.randn(2, 4, 8, 8), fdr_lib.low_pass_window(8, 8, 0.4)
    low, high = fdr_lib.split_frequencies(f, window)
    torch.testing.assert_close(low + high, f, atol=1e-5, rtol=1e-5)
    frs = torch.rand(2, 1, 8, 8)
    out = fdr_lib.frequency_reconstruct(f, window, frs, torch.ones(4, 8, 8))
    torch.testing.assert_close(out, high + low * frs, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(out, f, atol=1e-2)


@pytest.mark.parametrize('size,k0', [((7, 9), (2, -3)), ((6, 8), (-1, 2)), ((6, 8), (0, 1))])
def test_fdr_with_a_single_bin_filter_is_a_closed_form_cosine(size, k0):
    """W = 1 at +-k0 only: ``FDR(f)(x) = 2/(HW) Re(G(k0) exp(2 pi i k0 . x / (H, W)))`` with
    ``G(k0) = sum_x g(x) exp(-2 pi i k0 . x / (H, W))``, ``g = f - f_l + f_l M_FRS``."""
    h, w = size
    gen = torch.Generator().manual_seed(4)
    f = torch.randn(2, 3, h, w, generator=gen, dtype=torch.float64)
    frs = torch.rand(2, 1, h, w, generator=gen, dtype=torch.float64)
    ratio = 0.4  # window radius 1.2 (6 x 8) or 1.4 (7 x 9): k0 = (0, 1) is inside it
    weight = torch.zeros(h, w, dtype=torch.float64)
    weight[k0[0] + h // 2, k0[1] + w // 2] = weight[-k0[0] + h // 2, -k0[1] + w // 2] = 1
    out = fdr_lib.frequency_reconstruct(f, fdr_lib.low_pass_window(h, w, ratio), frs, weight)

    u, v = np.meshgrid(np.arange(h), np.arange(w), indexing='ij')
    phase = np.exp(2j * np.pi * (k0[0] * u / h + k0[1] * v / w))
    ku, kv = np.abs(np.arange(h) - h // 2), np.abs(np.arange(w) - w // 2)
    window = (np.maximum(ku[:, None], kv[None, :]) <= ratio * min(h, w) / 2).astype(float)
    expected = np.zeros((2, 3, h, w))
    for b in range(2):
        for c in range(3):
            low = ref_inverse_spectrum(ref_spectrum(f[b, c].numpy()) * window)
            g = f[b, c].numpy() - low + low * frs[b, 0].numpy()
            coefficient = (g * phase.conj()).sum()
            expected[b, c] = 2 / (h * w) * (coefficient * phase).real
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-9, atol=1e-12)
    assert np.abs(expected).max() > 0.05


def test_frs_mask_is_the_max_over_anchors_and_classes_of_teacher_probabilities():
    anchors, classes = 3, 5
    scores = torch.randn(2, anchors * classes, 4, 6, requires_grad=True)
    expected = scores.sigmoid().view(2, anchors, classes, 4, 6).amax(dim=(1, 2))[:, None]
    mask = fdr_lib.frs_mask(scores)
    torch.testing.assert_close(mask, expected)
    assert not mask.requires_grad


@pytest.mark.parametrize('size', [(49, 63), (25, 32), (8, 8), (5, 13)])
def test_fdr_filter_is_a_real_symmetric_gain_bounded_around_one(size):
    h, w = size
    fdr = FrequencyDomainReconstruction(channels=3, num_levels=1, filter_size=6, gain_bound=0.5)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        fdr.raw_gains.copy_(3 * torch.randn(fdr.raw_gains.shape, generator=gen))
        gain = fdr.level_filter(0, size).double()
    np.testing.assert_allclose(gain.numpy(), ref_gain(fdr.raw_gains[0].detach().double().numpy(),
                                                      size, 0.5), rtol=1e-6)
    torch.testing.assert_close(gain, gain[:, ref_mirror_index(h)][:, :, ref_mirror_index(w)])
    assert gain.min() > 0.5 and gain.max() < 1.5 and gain.std() > 0.1
    # Hermitian symmetry is kept, so real(iFFT) drops nothing (Parseval) and the energy of the
    # output stays within (1 -+ b)^2 of that of the unfiltered reconstruction
    f = torch.randn(2, 3, h, w, generator=gen, dtype=torch.float64)
    window, frs = fdr_lib.low_pass_window(h, w, 0.3), torch.rand(2, 1, h, w, generator=gen)
    plain = fdr_lib.frequency_reconstruct(f, window, frs, 1)
    filtered = fdr_lib.frequency_reconstruct(f, window, frs, gain)
    spec = fdr_lib.spectrum(plain)
    torch.testing.assert_close(filtered.pow(2).sum(),
                               (gain.pow(2) * spec.abs().pow(2)).sum() / (h * w))
    assert 0.25 < filtered.pow(2).sum() / plain.pow(2).sum() < 2.25


def test_fdr_module_shares_ratio_and_filter_between_teacher_and_student():
    fdr = MODELS.build(dict(type='FrequencyDomainReconstruction', channels=4, num_levels=2,
                            ratio_range=(0.1, 0.9)))
    with torch.no_grad():
        fdr.raw_gains.normal_(0, 2)
    levels = pyramid(2, 4, [(8, 8), (4, 6)])
    frs = [torch.rand(2, 1, *f.shape[-2:]) for f in levels]
    for mode in (True, False):
        fdr.train(mode)
        out_t, out_s = fdr(levels, [f.clone() for f in levels], frs)
        for t, s in zip(out_t, out_s):
            assert torch.equal(t, s)
    ratios = [fdr.train().draw_ratio() for _ in range(50)]
    assert min(ratios) >= 0.1 and max(ratios) <= 0.9 and len(set(ratios)) == 50
    assert fdr.eval().draw_ratio() == fdr.ratio == 0.1
    for size in ((8, 8), (5, 13), (100, 64)):
        weight = fdr.level_filter(1, size)
        assert weight.shape == (4, *size) and 0.5 < weight.min() and weight.max() < 1.5
    with pytest.raises(ValueError, match='gain_bound'):
        FrequencyDomainReconstruction(channels=4, gain_bound=1.0)


def test_fdr_frozen_filter_is_the_identity_and_gets_no_gradient():
    fdr = MODELS.build(dict(type='FrequencyDomainReconstruction', channels=4, num_levels=1,
                            learnable=False)).eval()
    assert not fdr.raw_gains.requires_grad
    teacher, student = pyramid(1, 4, [(9, 11)], seed=1), pyramid(1, 4, [(9, 11)],
                                                                 requires_grad=True)
    frs = [torch.rand(1, 1, 9, 11)]
    out_t, out_s = fdr(teacher, student, frs)
    window = fdr_lib.low_pass_window(9, 11, fdr.ratio)
    torch.testing.assert_close(out_t[0], fdr_lib.frequency_reconstruct(teacher[0], window,
                                                                       frs[0], 1))
    (out_t[0] - out_s[0]).pow(2).sum().backward()
    assert fdr.raw_gains.grad is None and student[0].grad.abs().sum() > 0


def unit_mean_magnitude_filter(raw_gain, size, bound):
    """The previous parametrisation: a free filter resized and scaled to unit mean magnitude."""
    resized = F.interpolate(raw_gain[None], size=size, mode='bilinear', align_corners=False)[0]
    return resized / resized.abs().mean()


def train_filter_alone(fdr, teacher, student, frs, steps: int, lr: float = 0.2) -> list:
    """Adam on FDR's filter only, the feature loss of fixed teacher and student levels."""
    optimizer = torch.optim.Adam([fdr.raw_gains], lr=lr)
    losses = []
    for _ in range(steps):
        out_t, out_s = fdr(teacher, student, frs)
        loss = sum((t - s).pow(2).sum(1).mean() for t, s in zip(out_t, out_s))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_fdr_filter_trained_alone_keeps_a_quarter_of_the_loss(monkeypatch):
    """Smooth fixed features at odd, realistic sizes; 1000 Adam steps at lr 0.2."""
    sizes = [(49, 63), (25, 32)]
    teacher = [smooth_features(1, 2, size, seed=10 + i) for i, size in enumerate(sizes)]
    student = [smooth_features(1, 2, size, seed=20 + i) for i, size in enumerate(sizes)]
    frs = [smooth_features(1, 1, size, seed=30 + i).sigmoid() for i, size in enumerate(sizes)]
    fdr = FrequencyDomainReconstruction(channels=2, num_levels=2).eval()
    losses = train_filter_alone(fdr, teacher, student, frs, steps=1000)
    assert losses[-1] >= (1 - fdr.gain_bound) ** 2 * losses[0] * (1 - 1e-5)
    assert losses[-1] >= 0.25 * losses[0] * (1 - 1e-5)
    assert fdr.level_filter(0, sizes[0]).min() < 0.55  # it did train: the bound stopped it

    monkeypatch.setattr(fdr_lib, 'bounded_gain', unit_mean_magnitude_filter)
    previous = FrequencyDomainReconstruction(channels=2, num_levels=2).eval()
    with torch.no_grad():
        previous.raw_gains.fill_(1)
    previous_losses = train_filter_alone(previous, teacher, student, frs, steps=300)
    assert previous_losses[0] == pytest.approx(losses[0], rel=1e-5)
    assert previous_losses[-1] < 0.01 * previous_losses[0]  # the collapse the bound prevents


# ---------------------------------------------------------------- EDE (eq. 1-2)
def test_ede_cached_adds_exactly_the_prior_resized_to_each_level():
    h, w, canvas = 12, 14, (16, 16)
    prior = torch.randint(0, 256, (1, h, w), dtype=torch.uint8)
    batch = make_batch([torch.rand(3, h, w) * 255], canvas, priors=[prior])
    ede = MODELS.build(dict(type='ExternalDisturbanceEnhancement', mode='cached'))
    levels = pyramid(1, 3, [canvas, (8, 8)])
    out = ede(levels, batch)
    expected = torch.zeros(1, 1, *canvas)
    expected[0, 0, :h, :w] = prior[0].float() / 255  # sigmoid(prior) stored as * 255; 0 on pads
    torch.testing.assert_close(out[0], levels[0] + expected)
    torch.testing.assert_close(
        out[1], levels[1] + F.interpolate(expected, (8, 8), mode='bilinear', align_corners=False))
    with pytest.raises(KeyError, match='LoadSAMPrior'):
        ede(levels, make_batch([torch.rand(3, h, w)], canvas))


def test_ede_builds_mobile_sam_lazily_and_names_a_missing_checkpoint(tmp_path):
    missing = str(tmp_path / 'mobile_sam.pt')
    loss = IFKDFeatureLoss(8, 8, ede=dict(checkpoint=missing), fdr=None, num_levels=1)
    assert loss.ede._sam == [] and not any('sam' in key for key in loss.state_dict())
    batch = make_batch([torch.rand(3, 8, 8) * 255], (8, 8))
    with pytest.raises(FileNotFoundError, match=r'ExternalDisturbanceEnhancement\.checkpoint.*'
                                                r'mobile_sam\.pt'):
        loss({'neck': pyramid(1, 8, [(8, 8)])}, {'neck': pyramid(1, 8, [(8, 8)])}, batch)


@pytest.fixture(scope='module')
def sam_checkpoint(tmp_path_factory) -> str:
    """A randomly initialised MobileSAM vit_t state dict (mask logits scaled up to vary)."""
    from mobile_sam import sam_model_registry

    torch.manual_seed(0)
    sam = sam_model_registry['vit_t']()
    with torch.no_grad():
        sam.mask_decoder.output_hypernetworks_mlps[0].layers[-1].weight.mul_(300)
    path = str(tmp_path_factory.mktemp('sam') / 'mobile_sam.pt')
    torch.save(sam.state_dict(), path)
    return path


def test_ede_online_mobile_sam_and_the_precomputed_prior_agree(sam_checkpoint, tmp_path):
    """One MobileSAM run online (through the loss, with backward) and one by the tool."""
    h, w, canvas = 40, 56, (64, 64)
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    rgb = torch.stack([(xx * 4) % 256, (yy * 6) % 256, ((xx + yy) > 50) * 200]).to(torch.uint8)
    img_path = str(tmp_path / 'scene_01.png')
    mmcv.imwrite(rgb.permute(1, 2, 0).numpy()[..., ::-1], img_path)  # stored as RGB on disk

    loss = MODELS.build(dict(type='IFKDFeatureLoss', student_channels=8, teacher_channels=16,
                             num_levels=2, ede=dict(checkpoint=sam_checkpoint)))
    assert loss.ede._sam == []
    batch = make_batch([rgb.float()], canvas)
    student = {'neck': pyramid(1, 8, [(16, 16), (8, 8)], requires_grad=True)}
    teacher = {'neck': pyramid(1, 16, [(16, 16), (8, 8)], seed=1),
               'cls_scores': pyramid(1, 9, [(16, 16), (8, 8)], seed=2)}
    loss(student, teacher, batch)['loss_ifkd_feat'].backward()
    sam = loss.ede._sam[0]
    assert not sam.training and all(p.grad is None and not p.requires_grad
                                    for p in sam.parameters())
    assert not any('sam' in key for key in loss.state_dict())
    assert all(p is not q for p in loss.parameters() for q in sam.parameters())
    prior = batch.cache['ifkd_sam_prior_online_mask']
    assert prior.shape == (1, 1, *canvas) and prior.min() >= 0 and prior.max() <= 1
    assert prior[..., h:, :].abs().sum() == 0 and prior[..., w:].abs().sum() == 0

    tool = load_tool('precompute_sam_prior')
    out_dir = str(tmp_path / 'priors')
    assert tool.precompute_priors(sam, [img_path], out_dir) == (1, 0)
    assert tool.precompute_priors(None, [img_path], out_dir) == (0, 1)  # resumable: skipped
    png = mmcv.imread(osp.join(out_dir, 'scene_01.png'), flag='unchanged')
    assert png.shape == (h, w) and png.dtype == np.uint8 and png.std() > 5
    cached = torch.from_numpy(png).float() / 255
    assert (cached - prior[0, 0, :h, :w]).abs().max() <= 1.01 / 255


def test_precompute_tool_lists_the_split_and_requires_the_checkpoint(synthetic_root, tmp_path):
    from mmengine.config import Config

    tool = load_tool('precompute_sam_prior')
    cfg = Config.fromfile(osp.join(REPO, 'configs/demo/retinanet_r18_fpn_demo_synthetic-shiprs.py'))
    root = osp.join(synthetic_root, 'ShipRSImageNet') + '/'
    cfg.train_dataloader.dataset.data_root = root
    cfg.val_dataloader.dataset.data_root = root
    train, val = tool.dataset_image_paths(cfg, 'train'), tool.dataset_image_paths(cfg, 'val')
    assert train and val and not set(train) & set(val)
    assert all(osp.isfile(path) for path in train + val)
    with pytest.raises(FileNotFoundError, match='--checkpoint'):
        tool.main([osp.join(REPO, 'configs/demo/retinanet_r18_fpn_demo_synthetic-shiprs.py'),
                   '--checkpoint', str(tmp_path / 'none.pt'), '--out-dir', str(tmp_path)])


@pytest.mark.parametrize('direction', ['horizontal', 'vertical', 'diagonal'])
def test_cached_prior_stays_aligned_with_the_image_through_resize_flip_and_padding(
        tmp_path, direction):
    from mmcv.transforms import Compose
    from mmdet.models.data_preprocessors import DetDataPreprocessor
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope

    init_default_scope('mmdet')
    rng = np.random.default_rng(0)
    gray = np.kron(rng.integers(0, 256, (6, 8)), np.ones((7, 7))).astype(np.uint8)  # 42 x 56
    mmcv.imwrite(np.repeat(gray[..., None], 3, axis=2), str(tmp_path / 'img.png'))
    mmcv.imwrite(gray, str(tmp_path / 'priors' / 'img.png'))  # the prior: the image itself
    pipeline = Compose([
        dict(type='LoadImageFromFile'),
        dict(type='LoadSAMPrior', prior_dir=str(tmp_path / 'priors')),
        dict(type='Resize', scale=(112, 84), keep_ratio=True),  # x 2
        dict(type='RandomFlip', prob=1.0, direction=direction),
        dict(type='PackDetInputs', meta_keys=('img_path', 'img_shape', 'ori_shape',
                                              'scale_factor', 'flip', 'flip_direction'))
    ])
    data = pipeline(dict(img_path=str(tmp_path / 'img.png'), img_id=0))
    preprocessor = DetDataPreprocessor(mean=MEAN.flatten().tolist(), std=STD.flatten().tolist(),
                                       bgr_to_rgb=True, pad_size_divisor=32)
    data = preprocessor(pseudo_collate([data]), False)
    batch = DistillBatch(inputs=data['inputs'], data_samples=data['data_samples'], mean=MEAN,
                         std=STD)
    assert batch.inputs.shape[-2:] == (96, 128) and batch.img_metas[0]['img_shape'] == (84, 112)
    prior = ExternalDisturbanceEnhancement(mode='cached').prior(batch)[0, 0]
    image = batch.pixel_images()[0, 0] / 255
    assert prior[84:].abs().sum() == 0 and prior[:, 112:].abs().sum() == 0  # padding
    prior, image = prior[:84, :112], image[:84, :112]
    agree = ((prior - image).abs() < 1.5 / 255).float().mean()
    flipped = {'horizontal': [-1], 'vertical': [-2], 'diagonal': [-2, -1]}[direction]
    unaligned = ((prior.flip(flipped) - image).abs() < 1.5 / 255).float().mean()
    assert agree > 0.7 and unaligned < 0.1


# ---------------------------------------------------------------- losses (eq. 12-13)
def test_feature_loss_with_every_part_off_is_the_masked_l2_of_eq12():
    loss = IFKDFeatureLoss(8, 16, alpha=0.06, ede=None, fdr=None, hsm=None, num_levels=2)
    assert loss.requires == ('neck', )
    student, teacher = pyramid(2, 8, [(8, 8), (4, 6)]), pyramid(2, 16, [(8, 8), (4, 6)], seed=1)
    out = loss({'neck': student}, {'neck': teacher}, make_batch([torch.rand(3, 8, 8)] * 2, (8, 8)))
    expected = 0
    for level, (s, t) in enumerate(zip(student, teacher)):
        diff = (t - loss.adapters[level](s)).pow(2).sum(dim=1)  # sum_c, (B, H, W)
        expected += diff.sum(dim=(1, 2)).mean() / (t.shape[2] * t.shape[3])
    torch.testing.assert_close(out['loss_ifkd_feat'], 0.06 * expected)


def test_head_loss_without_hsm_is_the_soft_bce_of_eq13():
    loss = IFKDHeadLoss(beta=0.5, hsm=None)
    student, teacher = pyramid(2, 12, [(8, 8), (4, 4)]), pyramid(2, 12, [(8, 8), (4, 4)], seed=1)
    out = loss({'cls_scores': student}, {'cls_scores': teacher}, None)
    expected = 0
    for s, t in zip(student, teacher):
        bce = F.binary_cross_entropy(s.sigmoid(), t.sigmoid(), reduction='none').sum(dim=1)
        expected += bce.sum(dim=(1, 2)).mean() / (t.shape[2] * t.shape[3])
    torch.testing.assert_close(out['loss_ifkd_head'], 0.5 * expected)


def test_feature_loss_with_ede_fdr_and_hsm_matches_a_float64_closed_form():
    """EDE (cached prior), FDR (eval ratio, a trained-looking filter) and HSM on a tiny input,
    against explicit DFT sums, bilinear matrices and the hand-written Möbius distance."""
    canvas, (h, w), sizes = (4, 6), (3, 5), [(4, 6), (2, 3)]
    gen = torch.Generator().manual_seed(6)
    prior = torch.randint(0, 256, (1, h, w), generator=gen, dtype=torch.uint8)
    batch = make_batch([torch.rand(3, h, w, generator=gen) * 255], canvas, priors=[prior])
    loss = IFKDFeatureLoss(3, 2, alpha=0.25, ede=dict(mode='cached'), num_levels=2,
                           fdr=dict(filter_size=3, ratio=0.5), hsm=dict(c=0.7),
                           adapter_kernel_size=1).double().eval()
    with torch.no_grad():
        loss.fdr.raw_gains.copy_(2 * torch.randn(loss.fdr.raw_gains.shape, generator=gen,
                                                 dtype=torch.float64))
    teacher = [16 * torch.randn(1, 2, *size, generator=gen, dtype=torch.float64) for size in sizes]
    student = [8 * torch.randn(1, 3, *size, generator=gen, dtype=torch.float64) for size in sizes]
    scores = [torch.randn(1, 4, *size, generator=gen, dtype=torch.float64) for size in sizes]
    out = loss({'neck': student}, {'neck': teacher, 'cls_scores': scores}, batch)

    on_canvas = np.zeros(canvas)
    on_canvas[:h, :w] = (prior[0].float() / 255).numpy()  # stored as uint8, read in float32
    expected = 0.0
    for level, size in enumerate(sizes):
        t, s = teacher[level][0].numpy(), student[level][0].numpy()
        adapter = loss.adapters[level]
        s = (np.einsum('oc,chw->ohw', adapter.weight[:, :, 0, 0].detach().numpy(), s)
             + adapter.bias.detach().numpy()[:, None, None])
        mask = ref_hsm_mask(t[None], s[None], c=0.7)[0][0]
        t = t + ref_resize(on_canvas, size)  # EDE: F_T + Resize(P)
        frs = (1 / (1 + np.exp(-scores[level][0].numpy()))).max(axis=0)
        gain = ref_gain(loss.fdr.raw_gains[level].detach().numpy(), size, 0.5)
        diff = ref_fdr(t, 0.5, frs, gain) - ref_fdr(s, 0.5, frs, gain)
        expected += (mask * (diff ** 2).sum(axis=0)).mean()
    assert out['loss_ifkd_feat'].dtype == torch.float64
    np.testing.assert_allclose(out['loss_ifkd_feat'].item(), 0.25 * expected, rtol=1e-9)


@pytest.mark.parametrize('ede', [None, dict(mode='cached')])
def test_feature_loss_runs_fdr_once_on_the_difference_as_the_two_sided_reconstruction(ede):
    """``FDR(T) - FDR(S) = FDR(T - S)``: the loss (one pass) against the module's two-sided
    ``forward`` at the same ratio, on odd-sized float32 levels, with EDE on and off; the
    gradients of the student and the filter agree as well."""
    sizes, canvas = [(13, 17), (7, 9)], (13, 17)
    gen = torch.Generator().manual_seed(8)
    priors = [torch.randint(0, 256, (1, 13, 17), generator=gen, dtype=torch.uint8)]
    batch = make_batch([torch.rand(3, 13, 17, generator=gen) * 255], canvas, priors=priors)
    loss = IFKDFeatureLoss(6, 6, alpha=1.0, ede=ede, num_levels=2, fdr=dict(filter_size=5),
                           adapter_kernel_size=1)
    with torch.no_grad():
        loss.fdr.raw_gains.copy_(2 * torch.randn(loss.fdr.raw_gains.shape, generator=gen))
    teacher = [16 * torch.randn(1, 6, *size, generator=gen) for size in sizes]
    student = [8 * torch.randn(1, 6, *size, generator=gen, requires_grad=True) for size in sizes]
    scores = [torch.randn(1, 9, *size, generator=gen) for size in sizes]
    loss.train()
    random.seed(3)
    one_pass = loss({'neck': student}, {'neck': teacher, 'cls_scores': scores}, batch)
    grads = torch.autograd.grad(one_pass['loss_ifkd_feat'], [*student, loss.fdr.raw_gains])

    random.seed(3)  # the same training ratio
    adapted = loss.adapt(student)
    masks = loss.hsm(teacher, adapted)
    shifted = loss.ede(teacher, batch) if ede else teacher
    out_t, out_s = loss.fdr(shifted, adapted, [fdr_lib.frs_mask(score) for score in scores])
    two_sided = sum(((t - s).pow(2).sum(1, keepdim=True) * m).mean()
                    for t, s, m in zip(out_t, out_s, masks))
    torch.testing.assert_close(one_pass['loss_ifkd_feat'], two_sided, rtol=1e-5, atol=0)
    for a, b in zip(grads, torch.autograd.grad(two_sided, [*student, loss.fdr.raw_gains])):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    assert two_sided > 0 and all(g.abs().sum() > 0 for g in grads)


def test_default_weights_are_the_released_codes():
    """alpha = 1e-4, beta = 1e-3 (the authors' code, same normalisation); the paper's 0.06 / 0.5
    are the ifkd-paper-weights configs (tests/test_configs.py)."""
    assert IFKDFeatureLoss(8, 8, fdr=None, hsm=None).alpha == 1e-4
    assert IFKDHeadLoss().beta == 1e-3


def test_full_ifkd_gradients_reach_student_adapters_and_filter_never_the_teacher():
    sizes, canvas = [(16, 16), (8, 8), (4, 4)], (16, 16)
    priors = [torch.randint(0, 256, (1, 16, 16), dtype=torch.uint8) for _ in range(2)]
    batch = make_batch([torch.rand(3, 16, 16) * 255] * 2, canvas, priors=priors)
    feat = MODELS.build(dict(type='IFKDFeatureLoss', student_channels=8, teacher_channels=16,
                             num_levels=3, ede=dict(mode='cached'), fdr=dict(), hsm=dict()))
    head = MODELS.build(dict(type='IFKDHeadLoss', student_channels=8, teacher_channels=16))
    student = {'neck': pyramid(2, 8, sizes, requires_grad=True),
               'cls_scores': pyramid(2, 6, sizes, requires_grad=True, seed=2)}
    teacher = {'neck': pyramid(2, 16, sizes, seed=1), 'cls_scores': pyramid(2, 6, sizes, seed=3)}
    feat.train()
    losses = {**feat(student, teacher, batch), **head(student, teacher, batch)}
    assert set(losses) == {'loss_ifkd_feat', 'loss_ifkd_head'}
    assert all(v.ndim == 0 and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    for level in student['neck'] + student['cls_scores']:
        assert level.grad is not None and level.grad.abs().sum() > 0
    for adapter in feat.adapters:
        assert adapter.weight.grad.abs().sum() > 0
    assert feat.fdr.raw_gains.grad.abs().sum() > 0
    assert not any(t.requires_grad or t.grad is not None
                   for t in teacher['neck'] + teacher['cls_scores'])
    masks = batch.cache[HSM_CACHE_KEY]  # the head loss used the feature loss's adapted mask
    assert len(masks) == 3 and not any(m.requires_grad for m in masks)
    expected = sum((F.binary_cross_entropy(s.sigmoid(), t.sigmoid(), reduction='none')
                    .sum(1, keepdim=True) * m).mean() for s, t, m in
                   zip(student['cls_scores'], teacher['cls_scores'], masks))
    torch.testing.assert_close(losses['loss_ifkd_head'], 1e-3 * expected.detach())


def test_level_and_channel_mismatches_are_clear_errors():
    with pytest.raises(ValueError, match='FDR filters'):
        IFKDFeatureLoss(8, 8, fdr=dict(num_levels=4), num_levels=5)
    loss = IFKDFeatureLoss(8, 8, fdr=None, hsm=None, num_levels=3)
    with pytest.raises(ValueError, match='expects 3 levels but student_neck has 2'):
        loss({'neck': pyramid(1, 8, [(4, 4)] * 2)}, {'neck': pyramid(1, 8, [(4, 4)] * 3)}, None)
    loss = IFKDFeatureLoss(8, 8, hsm=None, num_levels=2)
    with pytest.raises(ValueError, match='teacher_cls_scores has 3'):
        loss({'neck': pyramid(1, 8, [(4, 4)] * 2)},
             {'neck': pyramid(1, 8, [(4, 4)] * 2), 'cls_scores': pyramid(1, 3, [(4, 4)] * 3)},
             None)
    head = IFKDHeadLoss()
    with pytest.raises(ValueError, match='equal neck channels'):
        head({'neck': pyramid(1, 8, [(4, 4)]), 'cls_scores': pyramid(1, 3, [(4, 4)])},
             {'neck': pyramid(1, 16, [(4, 4)]), 'cls_scores': pyramid(1, 3, [(4, 4)])},
             make_batch([torch.rand(3, 4, 4)], (4, 4)))


def test_modules_are_registered_for_mmdet_and_mmrotate_configs():
    from mmdet.registry import TRANSFORMS
    from mmrotate.registry import TRANSFORMS as ROTATED_TRANSFORMS

    for name in ('ExternalDisturbanceEnhancement', 'FrequencyDomainReconstruction',
                 'HyperbolicSimilarityMask', 'IFKDFeatureLoss', 'IFKDHeadLoss'):
        assert MODELS.get(name) is not None and ROTATED_MODELS.get(name) is not None
    assert TRANSFORMS.get('LoadSAMPrior') is ROTATED_TRANSFORMS.get('LoadSAMPrior') is not None


# ---------------------------------------------------------------- visualisation tool
def test_render_masks_writes_the_ede_fdr_and_hsm_figures(tmp_path):
    from PIL import Image

    tool = load_tool('vis_masks')
    sizes = [(16, 16), (8, 8)]
    loss = IFKDFeatureLoss(8, 16, num_levels=2, ede=dict(mode='cached'))
    batch = make_batch([torch.rand(3, 12, 16) * 255], (16, 16),
                       priors=[torch.randint(0, 256, (1, 12, 16), dtype=torch.uint8)])
    paths = tool.render_masks(loss, pyramid(1, 16, sizes), pyramid(1, 8, sizes),
                              pyramid(1, 9, sizes), batch, str(tmp_path / 'vis'))
    names = sorted(osp.basename(p) for p in paths)
    assert names == ['ede_prior.png', 'fdr_level0.png', 'fdr_level1.png', 'hsm_level0.png',
                     'hsm_level1.png']
    for path in paths:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.format == 'PNG' and min(image.size) > 100


def test_vis_masks_cli_on_a_distiller_config(synthetic_root, tmp_path):
    """The CLI end to end: a RetinaNet distiller with cached EDE, one synthetic image."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    demo = osp.join(REPO, 'configs/demo/retinanet_r18_fpn_demo_synthetic-shiprs.py')
    init_default_scope('mmdet')
    teacher = MODELS.build(Config.fromfile(demo).model)
    torch.save({'state_dict': teacher.state_dict()}, str(tmp_path / 'teacher.pth'))
    image = osp.join(synthetic_root, 'ShipRSImageNet/VOC_Format/JPEGImages/000001.bmp')
    gray = mmcv.imread(image, flag='grayscale')
    mmcv.imwrite(gray, str(tmp_path / 'priors' / '000001.png'))
    config = tmp_path / 'ifkd_distill.py'
    config.write_text(f"""
_base_ = {demo!r}
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSAMPrior', prior_dir={str(tmp_path / 'priors')!r}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(256, 256), keep_ratio=True),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
model = dict(
    _delete_=True, type='DetectionDistiller', student={{{{_base_.model}}}},
    teacher=dict(config={demo!r}, checkpoint={str(tmp_path / 'teacher.pth')!r}),
    distill_losses=[
        dict(type='IFKDFeatureLoss', student_channels=128, teacher_channels=128,
             ede=dict(mode='cached')),
        dict(type='IFKDHeadLoss')])
""")
    out_dir = tmp_path / 'vis'
    load_tool('vis_masks').main([str(config), image, '--out-dir', str(out_dir)])
    assert sorted(p.name for p in out_dir.iterdir()) == ['ede_prior.png'] + [
        f'{kind}_level{level}.png' for kind in ('fdr', 'hsm') for level in range(5)]
