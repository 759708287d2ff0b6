"""KD-RNet and DKED on mmrotate: the equations, DDC, the Gaussian mask, the teacher bound, DOTA
patch splitting and merging, and one end-to-end run (train, distil, export, test) on synthetic
DOTA-layout patches."""
import copy
import json
import math
import os
import os.path as osp
import sys

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

import ifkd_mm  # noqa: F401
from ifkd_mm.distillation.base import DistillBatch
from ifkd_mm.distillation.rotated import (DKEDCorrelationLoss, DKEDPredictionLoss,
                                          DKEDResponseLoss, DynamicDirectionalConv, KDRNetLoss,
                                          axis_target, dominant_box_angle, kl_student_teacher,
                                          nonlocal_affinity, oriented_gaussian_mask,
                                          rotate_kernel, teacher_bounded)
from ifkd_mm.registry import MODELS

from .conftest import REPO, run, scalars

DEMO = osp.join(REPO, 'configs/kd-rnet/demo')
DKED_DEMO = osp.join(REPO, 'configs/dked/demo',
                     'dked_rotated-retinanet_r50-r18_fpn_demo_synthetic-dota.py')


def dense_outputs(cls_logits, deltas):
    """One level, one location: ``(1, A K, 1, 1)`` scores and ``(1, A 5, 1, 1)`` deltas."""
    return ([torch.tensor(cls_logits, dtype=torch.float32).view(1, -1, 1, 1)],
            [torch.tensor(deltas, dtype=torch.float32).view(1, -1, 1, 1)])


def kd_rnet(student, teacher, **kwargs):
    s_cls, s_reg = dense_outputs(*student)
    t_cls, t_reg = dense_outputs(*teacher)
    return KDRNetLoss(**kwargs)(dict(cls_scores=s_cls, bbox_preds=s_reg),
                                dict(cls_scores=t_cls, bbox_preds=t_reg), None)


# ------------------------------------------------------------------------------------------
# KD-RNet
# ------------------------------------------------------------------------------------------

def test_eq2_is_kl_of_student_to_teacher_at_temperature_8_by_hand():
    zs, zt = [1.0, 2.0, 3.0], [3.0, 1.0, 0.0]

    def softmax(z, t):
        e = [math.exp(v / t) for v in z]
        return [v / sum(e) for v in e]

    ps, pt = softmax(zs, 8.0), softmax(zt, 8.0)
    eq2 = -sum(a * math.log(b) for a, b in zip(ps, pt)) + sum(a * math.log(a) for a in ps)
    reverse = sum(b * math.log(b / a) for a, b in zip(ps, pt))  # KL(p_t || p_s)
    losses = kd_rnet((zs, [0.] * 5), (zt, [0.] * 5), temperature_squared=False,
                     distribution='softmax')
    assert losses['loss_kd_cls'].item() == pytest.approx(eq2, rel=1e-5)
    assert abs(eq2 - reverse) > 1e-4  # the direction is what is being checked
    scaled = kd_rnet((zs, [0.] * 5), (zt, [0.] * 5), cls_weight=0.5, distribution='softmax')
    assert scaled['loss_kd_cls'].item() == pytest.approx(0.5 * 64 * eq2, rel=1e-5)
    hot = kd_rnet((zs, [0.] * 5), (zt, [0.] * 5), cls_temperature=1.0,
                  temperature_squared=False, distribution='softmax')
    ps1, pt1 = softmax(zs, 1.0), softmax(zt, 1.0)
    assert hot['loss_kd_cls'].item() == pytest.approx(
        sum(a * math.log(a / b) for a, b in zip(ps1, pt1)), rel=1e-5)


def test_eq2_with_per_class_bernoulli_distributions():
    zs, zt, temp = torch.tensor([[0.5, -2.0]]), torch.tensor([[-1.0, 1.5]]), 8.0
    expected = 0.0
    for a, b in zip(zs[0].tolist(), zt[0].tolist()):
        p, q = 1 / (1 + math.exp(-a / temp)), 1 / (1 + math.exp(-b / temp))
        expected += p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))
    got = kl_student_teacher(zs, zt, temp, distribution='sigmoid')
    assert got.item() == pytest.approx(expected, rel=1e-5)


def bernoulli_kl(student_logits, teacher_logits, temperature):
    """Sum over classes of KL(Bernoulli(sigmoid(z_s / T)) || Bernoulli(sigmoid(z_t / T)))."""
    total = 0.0
    for a, b in zip(student_logits, teacher_logits):
        p, q = 1 / (1 + math.exp(-a / temperature)), 1 / (1 + math.exp(-b / temperature))
        total += p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))
    return total


def test_kd_rnet_default_sees_a_shift_common_to_all_logits_of_an_anchor():
    # the teacher is 6 logits more confident in every class: a softmax cannot see it
    zs = [-2.0, 0.5, 1.0]
    zt = [z + 6.0 for z in zs]
    expected = bernoulli_kl(zs, zt, 8.0)
    assert expected == pytest.approx(0.2054, abs=1e-4)
    summed = kd_rnet((zs, [0.] * 5), (zt, [0.] * 5), temperature_squared=False,
                     class_reduction='sum')
    assert summed['loss_kd_cls'].item() == pytest.approx(expected, rel=1e-5)
    with_t2 = kd_rnet((zs, [0.] * 5), (zt, [0.] * 5))
    assert with_t2['loss_kd_cls'].item() == pytest.approx(64 * expected / 3, rel=1e-5)
    softmax = kd_rnet((zs, [0.] * 5), (zt, [0.] * 5), temperature_squared=False,
                      distribution='softmax')
    assert softmax['loss_kd_cls'].item() < 1e-6


def test_kd_rnet_with_one_class_uses_a_bernoulli_and_refuses_the_softmax():
    zs, zt = [-1.5], [2.0]
    losses = kd_rnet((zs, [0.] * 5), (zt, [0.] * 5))
    assert losses['loss_kd_cls'].item() == pytest.approx(64 * bernoulli_kl(zs, zt, 8.0),
                                                         rel=1e-5)
    assert losses['loss_kd_cls'].item() > 1.0
    with pytest.raises(ValueError, match="distribution='softmax' over a single class logit"):
        kd_rnet((zs, [0.] * 5), (zt, [0.] * 5), distribution='softmax')


def test_kd_rnet_class_term_is_the_mean_kl_per_class_whatever_the_number_of_classes():
    # a fresh student (focal prior logit -4.6) against a teacher confident of the background
    # (-30) in every class: the summed form grows with K, the default stays the per-class KL
    per_class = 64 * bernoulli_kl([-4.6], [-30.0], 8.0)
    assert per_class == pytest.approx(64 * 0.7201, rel=1e-3)  # by hand: p 0.3601, q 0.0230
    for classes in (1, 4, 15):
        mean = kd_rnet(([-4.6] * classes, [0.] * 5), ([-30.0] * classes, [0.] * 5))
        assert mean['loss_kd_cls'].item() == pytest.approx(per_class, rel=1e-5)
        summed = kd_rnet(([-4.6] * classes, [0.] * 5), ([-30.0] * classes, [0.] * 5),
                         class_reduction='sum')
        assert summed['loss_kd_cls'].item() == pytest.approx(classes * per_class, rel=1e-5)
    with pytest.raises(ValueError, match='class_reduction'):
        KDRNetLoss(class_reduction='max')


def test_kd_rnet_regression_covers_only_the_anchors_the_teacher_is_confident_about():
    # one level, 3 anchors at 2 x 2 locations, 2 classes: 12 anchors in mmdet's order
    torch.manual_seed(0)
    t_logits = torch.full((1, 2, 2, 3, 2), -6.0)  # (B, H, W, A, K): sigmoid(-6) = 0.0025
    confident = [(0, 0, 1, 1), (1, 1, 2, 0), (0, 1, 0, 0)]  # (y, x, anchor, class)
    t_logits[0, 0, 0, 1, 1] = 3.0
    t_logits[0, 1, 1, 2, 0] = -2.9  # sigmoid 0.052 >= 0.05
    t_logits[0, 0, 1, 0, 0] = -2.0
    t_logits[0, 1, 0, 0, 1] = -3.0  # sigmoid 0.047 < 0.05: left out
    s_reg = torch.randn(1, 2, 2, 3, 5) * 4
    t_reg = torch.randn(1, 2, 2, 3, 5) * 4
    def as_level(x):  # (B, H, W, A, n) -> mmdet's (B, A n, H, W)
        return x.reshape(1, 2, 2, -1).permute(0, 3, 1, 2).contiguous()

    student_reg = as_level(s_reg).requires_grad_()
    losses = KDRNetLoss()(
        dict(cls_scores=[as_level(torch.zeros_like(t_logits))], bbox_preds=[student_reg]),
        dict(cls_scores=[as_level(t_logits)], bbox_preds=[as_level(t_reg)]), None)
    huber = []
    for y, x, a, _ in confident:
        d = (s_reg[0, y, x, a] - t_reg[0, y, x, a]).tolist()
        huber.append(sum(v * v / 2 if abs(v) <= 10 else 10 * abs(v) - 50 for v in d))
    assert losses['loss_kd_reg'].item() == pytest.approx(sum(huber) / 3, rel=1e-5)
    losses['loss_kd_reg'].backward()
    grad = student_reg.grad.permute(0, 2, 3, 1).reshape(1, 2, 2, 3, 5)
    selected = torch.zeros(1, 2, 2, 3, dtype=torch.bool)
    for y, x, a, _ in confident:
        selected[0, y, x, a] = True
    assert (grad[selected].abs().sum(-1) > 0).all()
    assert grad[~selected].abs().max() == 0
    # every anchor with reg_score_thr=0 (the earlier behaviour)
    every = KDRNetLoss(reg_score_thr=0.0)(
        dict(cls_scores=[as_level(torch.zeros_like(t_logits))], bbox_preds=[as_level(s_reg)]),
        dict(cls_scores=[as_level(t_logits)], bbox_preds=[as_level(t_reg)]), None)
    d = s_reg - t_reg
    all_huber = torch.where(d.abs() <= 10, d * d / 2, 10 * d.abs() - 50).sum(-1).mean()
    assert every['loss_kd_reg'].item() == pytest.approx(all_huber.item(), rel=1e-5)


def test_soft_regression_eq3_at_temperature_10():
    student = [0.0, 3.0, -25.0, 0.0, 0.0]
    teacher = [0.0, 0.0, 0.0, 0.0, 0.0]
    # literal eq. 3 on x / T: 1/2 (0.3)^2 and |2.5| - 1/2
    literal = kd_rnet(([0.] * 3, student), ([0.] * 3, teacher), temperature_squared=False)
    assert literal['loss_kd_reg'].item() == pytest.approx(0.5 * 0.3 ** 2 + 2.0, rel=1e-5)
    # times T^2: Huber with threshold T, 1/2 d^2 inside and T |d| - T^2 / 2 beyond
    huber = kd_rnet(([0.] * 3, student), ([0.] * 3, teacher), reg_weight=2.0)
    assert huber['loss_kd_reg'].item() == pytest.approx(2.0 * (4.5 + 250.0 - 50.0), rel=1e-5)
    same = kd_rnet(([0.] * 3, student), ([0.] * 3, student))
    assert same['loss_kd_reg'].item() == 0.0


def test_kd_rnet_averages_over_anchors_of_all_levels_and_trains_the_student_only():
    torch.manual_seed(0)
    shapes = [(2, 3 * 4, 8, 8), (2, 3 * 4, 4, 4)]
    s_cls = [torch.randn(s, requires_grad=True) for s in shapes]
    t_cls = [torch.randn(s) for s in shapes]
    s_reg = [torch.randn(2, 15, *s[2:], requires_grad=True) for s in shapes]
    t_reg = [torch.randn(2, 15, *s[2:]) for s in shapes]
    losses = KDRNetLoss()(dict(cls_scores=s_cls, bbox_preds=s_reg),
                          dict(cls_scores=t_cls, bbox_preds=t_reg), None)
    per_anchor = [kl_student_teacher(s.permute(0, 2, 3, 1).reshape(-1, 4),
                                     t.permute(0, 2, 3, 1).reshape(-1, 4), 8.0)
                  for s, t in zip(s_cls, t_cls)]
    assert losses['loss_kd_cls'].item() == pytest.approx(
        64 * torch.cat(per_anchor).mean().item() / 4, rel=1e-5)
    sum(losses.values()).backward()
    assert all(x.grad is not None and x.grad.abs().sum() > 0 for x in s_cls + s_reg)


# ------------------------------------------------------------------------------------------
# DKED: pure functions and DDC
# ------------------------------------------------------------------------------------------

def test_teacher_bound_is_zero_where_the_student_beats_the_teacher_by_the_margin():
    student = torch.tensor([0.2, 0.45, 0.5, 0.9])
    teacher = torch.full((4, ), 0.5)
    bounded = teacher_bounded(student, teacher, delta=0.1)
    assert bounded.tolist() == pytest.approx([0.0, 0.45, 0.5, 0.9])
    assert teacher_bounded(student, teacher, delta=0.0).tolist() == pytest.approx(
        [0.0, 0.0, 0.0, 0.9])


def test_gaussian_mask_peaks_at_box_centres_on_every_stride():
    for stride in (4, 8):
        row, col = 6, 10
        box = torch.tensor([[(col + 0.5) * stride, (row + 0.5) * stride, 40., 12., 0.7]])
        mask = oriented_gaussian_mask(box, (16, 24), stride)
        assert mask.shape == (16, 24)
        assert divmod(int(mask.argmax()), 24) == (row, col)
        assert mask.max().item() == pytest.approx(1.0)
    two = torch.tensor([[20.5, 20.5, 16., 8., 0.], [60.5, 40.5, 16., 8., 0.]])
    mask = oriented_gaussian_mask(two, (64, 96), 1)
    assert mask[20, 20] == pytest.approx(1.0) and mask[40, 60] == pytest.approx(1.0)
    assert mask[30, 40] < 1e-3


@pytest.mark.parametrize('theta', [-1.0, 0.3, 1.2])
def test_gaussian_mask_follows_the_box_angle(theta):
    box = torch.tensor([[64., 64., 60., 12., theta]])
    mask = oriented_gaussian_mask(box, (128, 128), 1)
    ys, xs = torch.meshgrid(torch.arange(128.) + 0.5, torch.arange(128.) + 0.5, indexing='ij')
    weights = mask / mask.sum()
    dx, dy = xs - (weights * xs).sum(), ys - (weights * ys).sum()
    cov = torch.tensor([[(weights * dx * dx).sum(), (weights * dx * dy).sum()],
                        [(weights * dx * dy).sum(), (weights * dy * dy).sum()]])
    _, vectors = torch.linalg.eigh(cov)
    major = vectors[:, -1]
    assert abs(float(major[0] * math.cos(theta) + major[1] * math.sin(theta))) == pytest.approx(
        1.0, abs=1e-3)
    # the spreads: sigma = 0.25 w = 15 px along the box, 0.25 h = 3 px across it (cell (10, 10)
    # is at pixel (10.5, 10.5); the box is placed so that the cell lies 15 px along / 3 px across)
    cos, sin = math.cos(theta), math.sin(theta)
    for offset, expected in (((15 * cos, 15 * sin), math.exp(-0.5)),
                             ((-3 * sin, 3 * cos), math.exp(-0.5)),
                             ((-15 * sin, 15 * cos), math.exp(-0.5 * 25))):
        shifted = torch.tensor([[10.5 - offset[0], 10.5 - offset[1], 60., 12., theta]])
        value = oriented_gaussian_mask(shifted, (21, 21), 1)[10, 10].item()
        assert value == pytest.approx(expected, rel=1e-4, abs=1e-9)


def test_kernel_rotation_steps_of_45_degrees():
    weight = torch.arange(9.).view(1, 1, 3, 3)
    assert torch.equal(rotate_kernel(weight, 2), torch.rot90(weight, -1, (-2, -1)))
    assert torch.equal(rotate_kernel(weight, 8), weight)
    # one step: every outer tap moves one place clockwise, the centre stays
    assert rotate_kernel(weight, 1)[0, 0].tolist() == [[3., 0., 1.], [6., 4., 2.], [7., 8., 5.]]


@pytest.mark.parametrize('groups', [None, 1])
def test_ddc_rotating_the_input_permutes_the_orientation_responses(groups):
    torch.manual_seed(0)
    ddc = DynamicDirectionalConv(4, num_orientations=8, groups=groups)
    x = torch.randn(2, 4, 12, 12)
    turned = torch.rot90(x, -1, (-2, -1))  # 90 degrees clockwise = 2 kernel steps
    responses = ddc.orientation_responses(x)
    responses_turned = ddc.orientation_responses(turned)
    assert responses.shape == (2, 8, 4, 12, 12)
    for k in range(8):
        expected = torch.rot90(responses[:, (k - 2) % 8], -1, (-2, -1))
        assert torch.allclose(responses_turned[:, k], expected, atol=1e-5)
        assert not torch.allclose(responses_turned[:, k],
                                  torch.rot90(responses[:, k], -1, (-2, -1)), atol=1e-3)
    assert torch.allclose(ddc(turned), torch.rot90(ddc(x), -1, (-2, -1)), atol=1e-5)


def box_batch(boxes_per_image, size):
    """A DistillBatch of images of ``size`` px with the given (n, 5) rotated GT boxes."""
    samples = []
    for boxes in boxes_per_image:
        sample = DetDataSample()
        boxes = torch.tensor(boxes, dtype=torch.float32).view(-1, 5)
        sample.gt_instances = InstanceData(bboxes=boxes, labels=torch.zeros(len(boxes)).long())
        samples.append(sample)
    return DistillBatch(inputs=torch.zeros(len(samples), 3, *size), data_samples=samples,
                        mean=torch.zeros(1, 3, 1, 1), std=torch.ones(1, 3, 1, 1))


def smooth_maps(shape, sigma, generator):
    """Gaussian-blurred white noise (reflect padding), scaled to unit standard deviation."""
    radius = int(3 * sigma)
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1.) / sigma) ** 2)
    taps = (taps / taps.sum()).repeat(shape[1], 1, 1, 1)
    x = torch.randn(shape, generator=generator)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode='reflect'), taps.view(shape[1], 1, 1, -1),
                 groups=shape[1])
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode='reflect'), taps.view(shape[1], 1, -1, 1),
                 groups=shape[1])
    return x / x.std()


def test_ddc_trained_alone_cannot_lower_the_response_loss_on_smooth_maps():
    # fixed, unrelated, spatially smooth teacher and student maps of an odd size (37 x 45, stride
    # 4): the DDC (its kernel and attention) trained alone by everything the module returns.
    # Before, L_drfd trained the DDC and it learnt to look where both maps vanish (-99.9 % here);
    # normalised by the teacher's energy but still trained by L_drfd it found the directions of
    # chance agreement (-60 to -85 %). L_drfd no longer reaches the DDC, whose own objective
    # (the GT orientation on the teacher) moves L_drfd only as a side effect: it stayed at
    # 101-140 % of its start over seeds and learning rates. Bound: half of the start.
    generator = torch.Generator().manual_seed(0)
    teacher = [smooth_maps((2, 8, 37, 45), 3.0, generator)]
    student = [smooth_maps((2, 8, 37, 45), 3.0, generator)]
    boxes = [[60., 50., 90., 40., 0.5], [150., 110., 60., 30., -0.8]]
    batch = box_batch([boxes, boxes], (148, 180))
    torch.manual_seed(0)
    loss = DKEDResponseLoss(student_channels=8, teacher_channels=8, strides=(4, ),
                            num_orientations=8)
    first = loss(dict(neck=student), dict(neck=teacher), batch)
    optimizer = torch.optim.Adam(loss.ddc.parameters(), lr=0.05)
    for _ in range(200):
        optimizer.zero_grad()
        sum(loss(dict(neck=student), dict(neck=teacher), batch).values()).backward()
        optimizer.step()
    last = loss(dict(neck=student), dict(neck=teacher), batch)
    assert last['loss_dked_drfd'].item() >= 0.5 * first['loss_dked_drfd'].item()
    # the DDC did learn: its orientation divergence fell
    assert last['loss_dked_ddc'].item() < 0.5 * first['loss_dked_ddc'].item()


def hand_gaussians(boxes, row, col, stride, ratio=0.25):
    """Each box's oriented Gaussian at cell (row, col), in plain Python."""
    px, py, values = (col + 0.5) * stride, (row + 0.5) * stride, []
    for cx, cy, w, h, theta in boxes:
        dx, dy = px - cx, py - cy
        along = dx * math.cos(theta) + dy * math.sin(theta)
        across = -dx * math.sin(theta) + dy * math.cos(theta)
        sigma_w, sigma_h = max(ratio * w, stride / 2), max(ratio * h, stride / 2)
        values.append(math.exp(-0.5 * ((along / sigma_w) ** 2 + (across / sigma_h) ** 2)))
    return values


def hand_ddc4(x, weight, attention):
    """A depthwise DDC with 4 orientations (90-degree turns) in float64 numpy: the attention
    ``softmax_k(sum_c v_c Y_k^2)`` and ``sum_k a_k Y_k / ||sum_k a_k W_k||`` per location."""
    batch, channels, height, width = x.shape
    kernels = np.stack([np.rot90(weight, -k, axes=(-2, -1)) for k in range(4)])  # (4, C, 3, 3)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    responses = np.zeros((batch, 4, channels, height, width))
    for k in range(4):
        for di in range(3):
            for dj in range(3):
                responses[:, k] += (kernels[k][None, :, di, dj, None, None]
                                    * padded[:, :, di:di + height, dj:dj + width])
    logits = (attention[None, None, :, None, None] * responses ** 2).sum(2)
    weights = np.exp(logits - logits.max(1, keepdims=True))
    weights /= weights.sum(1, keepdims=True)
    mixed = np.einsum('bkhw,kcij->bchwij', weights, kernels)
    norm = np.sqrt((mixed ** 2).sum(axis=(-2, -1)))
    return (weights[:, :, None] * responses).sum(1) / norm, weights


def hand_standardise(x, eps=1e-5):
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    return (x - mean) / np.sqrt(((x - mean) ** 2).mean(axis=(0, 2, 3), keepdims=True) + eps)


def test_response_loss_and_ddc_objective_against_an_independent_float64_computation():
    boxes = [[[14., 18., 30., 12., 0.4], [30., 20., 10., 24., -0.3]], [[20., 12., 26., 14., 1.2]]]
    batch = box_batch(boxes, (40, 48))
    strides, sizes = (4, 8), ((9, 11), (5, 6))
    torch.manual_seed(0)
    student = [torch.randn(2, 3, *size) for size in sizes]
    # a trained teacher's responses are larger and offset
    teacher = [50 * torch.randn(2, 3, *size) + 3 for size in sizes]
    loss = DKEDResponseLoss(student_channels=3, teacher_channels=3, strides=strides,
                            num_orientations=4, loss_weight=0.5, ddc_loss_weight=2.0)
    with torch.no_grad():
        loss.ddc.attention.copy_(torch.tensor([0.3, 1.1, 0.6]))
    got = loss(dict(neck=student), dict(neck=teacher), batch)
    weight = loss.ddc.weight.detach().double().numpy()[:, 0]
    attention = loss.ddc.attention.detach().double().numpy()
    drfd, ddc = [], []
    for s, t, stride, (height, width) in zip(student, teacher, strides, sizes):
        y_s, _ = hand_ddc4(hand_standardise(s.double().numpy()), weight, attention)
        y_t, a_t = hand_ddc4(hand_standardise(t.double().numpy()), weight, attention)
        error = energy = kl_sum = g2_sum = 0.0
        for b, image_boxes in enumerate(boxes):
            for i in range(height):
                for j in range(width):
                    values = hand_gaussians(image_boxes, i, j, stride)
                    g2 = max(values) ** 2
                    error += g2 * ((y_t[b, :, i, j] - y_s[b, :, i, j]) ** 2).sum()
                    energy += g2 * (y_t[b, :, i, j] ** 2).sum()
                    _, _, w, h, theta = image_boxes[int(np.argmax(values))]
                    axis = (theta if w >= h else theta + math.pi / 2) % math.pi
                    position = axis / (math.pi / 2)  # axes at 0 and 90 degrees
                    lower = int(position) % 2
                    target = np.zeros(2)
                    target[lower] += 1 - (position - int(position))
                    target[(lower + 1) % 2] += position - int(position)
                    p_axis = a_t[b, :2, i, j] + a_t[b, 2:, i, j]
                    kl_sum += g2 * sum(q * math.log(q / p) for q, p in zip(target, p_axis)
                                       if q > 0)
                    g2_sum += g2
        drfd.append(error / energy)
        ddc.append(kl_sum / g2_sum)
    assert got['loss_dked_drfd'].item() == pytest.approx(0.5 * np.mean(drfd), rel=1e-4)
    assert got['loss_dked_ddc'].item() == pytest.approx(2.0 * np.mean(ddc), rel=1e-4)
    assert 1.0 < np.mean(drfd) < 3.0  # unrelated maps of equal energy: about 2


def test_response_loss_ignores_the_teachers_scale_and_is_one_for_a_silent_student():
    batch = box_batch([[[20., 16., 24., 10., 0.7]], [[12., 20., 12., 20., 0.0]]], (40, 48))
    torch.manual_seed(1)
    loss = DKEDResponseLoss(student_channels=4, teacher_channels=4, strides=(4, 8),
                            num_orientations=8)
    student = [torch.randn(2, 4, 10, 12), torch.randn(2, 4, 5, 6)]
    teacher = [torch.randn(2, 4, 10, 12), torch.randn(2, 4, 5, 6)]
    value = loss(dict(neck=student), dict(neck=teacher), batch)['loss_dked_drfd']
    scaled = [200 * t - 40 for t in teacher]
    assert loss(dict(neck=student), dict(neck=scaled), batch)['loss_dked_drfd'].item() == \
        pytest.approx(value.item(), rel=1e-4)
    silent = [torch.full_like(s, 0.5) for s in student]
    assert loss(dict(neck=silent), dict(neck=scaled), batch)['loss_dked_drfd'].item() == \
        pytest.approx(1.0, abs=1e-6)
    same = loss(dict(neck=[3 * t + 1 for t in teacher]), dict(neck=teacher), batch)
    assert same['loss_dked_drfd'].item() == pytest.approx(0.0, abs=1e-6)


def test_response_loss_trains_the_student_and_the_ddc_only_its_orientation_objective():
    batch = box_batch([[[20., 16., 24., 10., 0.7]], [[30., 20., 30., 8., -1.0]]], (40, 48))
    torch.manual_seed(2)
    loss = DKEDResponseLoss(student_channels=6, teacher_channels=4, strides=(4, ),
                            num_orientations=8)
    student = [torch.randn(2, 6, 10, 12, requires_grad=True)]
    teacher = [torch.randn(2, 4, 10, 12)]
    values = loss(dict(neck=student), dict(neck=teacher), batch)
    ddc_params = list(loss.ddc.parameters())
    drfd_grads = torch.autograd.grad(values['loss_dked_drfd'],
                                     ddc_params + student + [loss.adapter.weight],
                                     retain_graph=True, allow_unused=True)
    assert all(g is None or g.abs().max() == 0 for g in drfd_grads[:len(ddc_params)])
    assert all(g.abs().sum() > 0 for g in drfd_grads[len(ddc_params):])
    ddc_grads = torch.autograd.grad(values['loss_dked_ddc'], ddc_params + student,
                                    allow_unused=True)
    assert all(g.abs().sum() > 0 for g in ddc_grads[:len(ddc_params)])
    assert ddc_grads[-1] is None


def test_orientation_targets_by_hand():
    # axes at 0, 45, 90, 135 degrees (8 kernels); angles taken mod 180 degrees
    angles = torch.tensor([0.0, math.pi / 8, -math.pi / 4, 3 * math.pi / 4 + math.pi / 16,
                           math.pi])
    expected = torch.tensor([[1., 0., 0., 0.], [0.5, 0.5, 0., 0.], [0., 0., 0., 1.],
                             [0.25, 0., 0., 0.75], [1., 0., 0., 0.]])
    assert torch.allclose(axis_target(angles, 4), expected, atol=1e-6)
    # the long axis of the box that sets G at each cell: (w < h) turns the angle by 90 degrees
    boxes = torch.tensor([[10., 10., 16., 6., 0.3], [40., 10., 6., 16., 0.3]])
    angle = dominant_box_angle(boxes, (5, 13), 4)
    assert angle[2, 2].item() == pytest.approx(0.3)
    assert angle[2, 10].item() == pytest.approx(0.3 + math.pi / 2)
    assert torch.equal(dominant_box_angle(boxes[:0], (5, 13), 4), torch.zeros(5, 13))


def test_nonlocal_correlation_compares_detectors_of_different_width():
    torch.manual_seed(0)
    feature = torch.randn(2, 32, 20, 20)
    affinity = nonlocal_affinity(feature, max_size=10)
    assert affinity.shape == (2, 100, 100)
    assert torch.allclose(torch.diagonal(affinity, dim1=1, dim2=2), torch.ones(2, 100), atol=1e-5)
    assert torch.allclose(nonlocal_affinity(3 * feature, 10), affinity, atol=1e-5)
    corr = DKEDCorrelationLoss(stages=(-1, ), max_size=10)
    teacher = dict(backbone=(torch.randn(2, 64, 20, 20), ))
    part = corr(dict(backbone=(teacher['backbone'][0][:, :32].clone(), )), teacher, None)
    assert part['loss_dked_corr'].item() > 0
    wider = torch.cat([teacher['backbone'][0], teacher['backbone'][0]], 1)
    assert corr(dict(backbone=(wider, )), teacher, None)['loss_dked_corr'].item() < 1e-10
    with pytest.raises(ValueError, match='equal stride'):
        corr(dict(backbone=(torch.randn(2, 8, 10, 10), )), teacher, None)


# ------------------------------------------------------------------------------------------
# DKED prediction distillation on a real mmrotate head
# ------------------------------------------------------------------------------------------

def rotated_head_config(lam=0.5) -> Config:
    cfg = Config.fromfile(osp.join(DEMO, 'rotated-retinanet_r18_fpn_demo_synthetic-dota.py'))
    cfg.model.bbox_head.loss_cls.loss_weight = lam
    return cfg.model


def rotated_batch(size=128):
    from mmrotate.structures.bbox import RotatedBoxes
    samples = []
    for shift in (0., 10.):
        sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                             pad_shape=(size, size), scale_factor=(1., 1.),
                                             batch_input_shape=(size, size)))
        sample.gt_instances = InstanceData(
            bboxes=RotatedBoxes(torch.tensor([[40. + shift, 40., 44., 16., 0.4],
                                              [90., 80. - shift, 30., 20., -0.6]])),
            labels=torch.tensor([0, 6]))
        samples.append(sample)
    return DistillBatch(inputs=torch.zeros(2, 3, size, size), data_samples=samples,
                        mean=torch.zeros(1, 3, 1, 1), std=torch.ones(1, 3, 1, 1))


def head_outputs(model: dict, seed: int, size=128):
    torch.manual_seed(seed)
    detector = MODELS.build(model)
    detector.init_weights()
    with torch.no_grad():
        cls, reg = detector.bbox_head(detector.extract_feat(torch.randn(2, 3, size, size)))
    return dict(cls_scores=list(cls), bbox_preds=list(reg))


def test_dked_prediction_loss_uses_the_heads_assignment_and_bounds_by_the_teacher():
    init_default_scope('mmrotate')
    model = rotated_head_config()
    loss = MODELS.build(dict(type='DKEDPredictionLoss', head=model.bbox_head,
                             train_cfg=model.train_cfg, lam=0.5, delta=0.0))
    batch = rotated_batch()
    student, teacher = head_outputs(model, 0), head_outputs(model, 1)
    values = loss(student, teacher, batch)
    assert values['loss_dked_obb'] > 0 and values['loss_dked_cls'] > 0
    # a student equal to its teacher is never worse than it: no bound term, no soft-label loss
    same = loss(student, student, batch)
    assert same['loss_dked_obb'].item() == 0.0
    assert same['loss_dked_cls'].item() == pytest.approx(0.0, abs=1e-7)
    # with a margin the equal student must still improve: the bound is its own box loss (x lam)
    margin = MODELS.build(dict(type='DKEDPredictionLoss', head=model.bbox_head,
                               train_cfg=model.train_cfg, lam=0.5, delta=0.05))
    bounded = margin(student, student, batch)['loss_dked_obb']
    assert bounded > 0
    # ... and equals lam x the head's own mean box loss over the same positive anchors
    detector = MODELS.build(model)
    own = detector.bbox_head.loss_by_feat(student['cls_scores'], student['bbox_preds'],
                                          [s.gt_instances for s in batch.data_samples],
                                          [s.metainfo for s in batch.data_samples])
    own_box = torch.cat([v.reshape(-1) for v in own['loss_bbox']])
    assert bounded.item() == pytest.approx(0.5 * own_box[own_box != 0].mean().item(), rel=1e-4)


def test_dked_prediction_loss_reuses_the_assignments_the_student_head_made_for_its_loss():
    from ifkd_mm.distillation.distiller import recording
    init_default_scope('mmrotate')
    model = rotated_head_config()
    loss = MODELS.build(dict(type='DKEDPredictionLoss', head=model.bbox_head,
                             train_cfg=model.train_cfg, lam=0.5))
    batch = rotated_batch()
    student, teacher = head_outputs(model, 0), head_outputs(model, 1)
    detector = MODELS.build(model)
    assigner = detector.bbox_head.assigner
    calls = []
    loss.assigner.assign = lambda *args, **kwargs: calls.append(args)
    with recording(detector, ['assignments'], student):
        detector.bbox_head.loss_by_feat(student['cls_scores'], student['bbox_preds'],
                                        [s.gt_instances for s in batch.data_samples],
                                        [s.metainfo for s in batch.data_samples])
    assert 'assign' not in vars(assigner)  # the head's assigner is restored
    assert len(student['assignments']) == 2
    assert [int((a.gt_inds > 0).sum()) for a in student['assignments']] != [0, 0]
    shared = loss(student, teacher, batch)
    assert calls == []  # the loss assigned nothing itself
    del loss.assigner.assign
    recorded = student.pop('assignments')
    own = loss(student, teacher, batch)
    for name in ('loss_dked_obb', 'loss_dked_cls'):
        assert shared[name].item() == pytest.approx(own[name].item(), rel=1e-6)
    with pytest.raises(ValueError, match='1 recorded assignments for 2 images'):
        loss(dict(student, assignments=recorded[:1]), teacher, batch)


def test_dked_prediction_loss_needs_the_students_class_loss_weighted_by_lambda():
    init_default_scope('mmrotate')
    model = rotated_head_config(lam=1.0)
    with pytest.raises(ValueError, match='loss_cls.loss_weight is 1.0, set it to lam=0.5'):
        DKEDPredictionLoss(head=model.bbox_head, train_cfg=model.train_cfg, lam=0.5)


def test_dked_prediction_loss_names_a_point_based_head():
    init_default_scope('mmrotate')
    model = rotated_head_config(lam=0.5)
    head = {key: value for key, value in model.bbox_head.items() if key != 'anchor_generator'}
    head['type'] = 'RotatedFCOSHead'
    with pytest.raises(ValueError, match='RotatedFCOSHead has no anchor_generator'):
        DKEDPredictionLoss(head=head, train_cfg=model.train_cfg, lam=0.5)


def test_dked_distiller_trains_auxiliary_modules_that_export_drops(tmp_path):
    init_default_scope('mmrotate')
    cfg = Config.fromfile(DKED_DEMO)
    teacher_model = copy.deepcopy(cfg.model.student)
    teacher_path = str(tmp_path / 'teacher.pth')
    torch.save(dict(state_dict=MODELS.build(teacher_model).state_dict()), teacher_path)
    distiller_cfg = copy.deepcopy(cfg.model)
    distiller_cfg.teacher = dict(config=teacher_model, checkpoint=teacher_path)
    distiller = MODELS.build(distiller_cfg)
    batch = rotated_batch()
    distiller.train()
    losses = distiller.loss(torch.randn(2, 3, 128, 128), batch.data_samples)
    assert {'loss_dked_corr', 'loss_dked_drfd', 'loss_dked_ddc', 'loss_dked_obb',
            'loss_dked_cls'} <= set(losses)
    total, _ = distiller.parse_losses(losses)
    total.backward()
    ddc = distiller.distill_losses[1].ddc
    assert ddc.weight.grad is not None and ddc.weight.grad.abs().sum() > 0
    keys = distiller.state_dict().keys()
    assert any(k.startswith('distill_losses.1.ddc') for k in keys)
    assert not any(k.startswith('teacher.') for k in keys)


# ------------------------------------------------------------------------------------------
# DOTA patches: split, merge, end to end
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def dota_patches(tmp_path_factory):
    """Synthetic DOTA (4 train, 2 val images of 192 px) cut into 128 px patches."""
    from ifkd_mm.datasets.synthetic import make_dota

    root = tmp_path_factory.mktemp('rotated')
    make_dota(str(root), num_train=4, num_val=2, img_size=192, seed=0)
    out = root / 'split'
    log = run([sys.executable, 'tools/data/split_dota.py', '--src', str(root / 'DOTA'),
               '--out', str(out), '--size', '128', '--train-overlap', '32',
               '--test-overlap', '64', '--splits', 'train:trainval', 'val:val'])
    return root, out, log


def test_split_names_patches_and_moves_boxes_into_them(dota_patches):
    root, out, log = dota_patches
    assert 'train -> ' in log and '16 patches of 128 px, overlap 32' in log
    assert 'val -> ' in log and '8 patches of 128 px, overlap 64' in log
    names = sorted(os.listdir(out / 'trainval' / 'images'))
    assert names[:4] == ['P0000__128__0___0.png', 'P0000__128__0___64.png',
                         'P0000__128__64___0.png', 'P0000__128__64___64.png']
    image = cv2.imread(str(root / 'DOTA/train/images/P0000.png'))
    patch = cv2.imread(str(out / 'trainval/images/P0000__128__64___0.png'))
    assert np.array_equal(patch, image[0:128, 64:192])
    source = [line.split() for line in open(root / 'DOTA/train/labelTxt/P0000.txt')
              if len(line.split()) == 10]
    moved = [line.split() for line in open(out / 'trainval/annfiles/P0000__128__64___64.txt')]
    whole = [o for o in source if all(64 <= float(v) < 192 for v in o[:8])]
    assert whole
    for obj in whole:
        shifted = [float(v) - 64 for v in obj[:8]]
        assert any(np.allclose(shifted, [float(v) for v in m[:8]], atol=1e-3) and m[8] == obj[8]
                   for m in moved)


def test_dota_metric_merges_patch_results_into_full_images(tmp_path):
    from mmrotate.evaluation import DOTAMetric
    from ifkd_mm.datasets.synthetic import DOTA_CLASSES

    metric = DOTAMetric(merge_patches=True, format_only=True,
                        outfile_prefix=str(tmp_path / 'Task1'))
    metric.dataset_meta = dict(classes=DOTA_CLASSES)
    box = np.array([[20., 30., 16., 8., 0.]], dtype=np.float32)
    results = [dict(img_id='P0004__128__64___0', bboxes=box, scores=np.array([0.9]),
                    labels=np.array([6])),
               dict(img_id='P0004__128__0___64', bboxes=box + [[30., 0., 0., 0., 0.]],
                    scores=np.array([0.8]), labels=np.array([6]))]
    metric.merge_results(results, str(tmp_path / 'Task1'))
    lines = open(tmp_path / 'Task1' / 'Task1_ship.txt').read().split('\n')
    rows = [line.split() for line in lines if line]
    assert [row[0] for row in rows] == ['P0004', 'P0004']
    centres = sorted((np.mean([float(v) for v in row[2::2]]), np.mean([float(v) for v in
                                                                        row[3::2]]))
                     for row in rows)
    assert np.allclose(centres, [(50., 94.), (84., 30.)], atol=1e-2)


def tiny_rotated_config(tmp_path, base: str, split_root, max_epochs: int, name: str,
                        extra: str = '') -> str:
    """``base`` on the test's DOTA patches, batch 4, no validation during training; the merged
    metric scores against the unsplit val labels beside the patches (``dota_patches``)."""
    root = str(split_root) + '/'
    ann_dir = osp.join(osp.dirname(str(split_root)), 'DOTA', 'val', 'labelTxt')
    path = tmp_path / f'{name}.py'
    path.write_text(f"""
_base_ = {base!r}
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root={root!r}))
val_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                      dataset=dict(data_root={root!r}))
test_dataloader = val_dataloader
val_evaluator = dict(ann_dir={ann_dir!r})
test_evaluator = dict(ann_dir={ann_dir!r})
train_cfg = dict(max_epochs={max_epochs}, val_interval=1, val_begin={max_epochs + 1})
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end={max_epochs})]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval={max_epochs}))
randomness = dict(seed=0)
log_processor = dict(window_size=1)
{extra}
""")
    return str(path)


@pytest.fixture(scope='module')
def distilled(dota_patches, tmp_path_factory):
    """A tiny rotated teacher (the R18 demo detector) trained on the patches, then KD-RNet and
    DKED runs distilling it into the demo student, all through tools/train.py."""
    _, split, _ = dota_patches
    tmp = tmp_path_factory.mktemp('distil')
    student = tiny_rotated_config(tmp, osp.join(DEMO, 'rotated-retinanet_r18_fpn_demo_synthetic-'
                                                'dota.py'), split, 2, 'student')
    run([sys.executable, 'tools/train.py', student, '--work-dir', str(tmp / 'teacher')])
    teacher = f"model = dict(teacher=dict(config={student!r}, checkpoint=" \
              f"{str(tmp / 'teacher' / 'epoch_2.pth')!r}))"
    runs = {}
    for name, base in (('kd-rnet', osp.join(DEMO, 'kd-rnet_rotated-retinanet_r50-r18_fpn_demo_'
                                                   'synthetic-dota.py')), ('dked', DKED_DEMO)):
        config = tiny_rotated_config(tmp, base, split, 1, name, teacher)
        work_dir = tmp / name
        run([sys.executable, 'tools/train.py', config, '--work-dir', str(work_dir)])
        exported = str(work_dir / 'student.pth')
        run([sys.executable, 'tools/export_student.py', str(work_dir / 'epoch_1.pth'), exported])
        runs[name] = dict(work_dir=str(work_dir), exported=exported)
    return student, runs


@pytest.mark.parametrize('method,terms', [
    ('kd-rnet', ('loss_kd_cls', 'loss_kd_reg')),
    ('dked', ('loss_dked_corr', 'loss_dked_drfd', 'loss_dked_ddc', 'loss_dked_obb',
              'loss_dked_cls'))])
def test_distillation_runs_log_their_terms_and_export_a_plain_student(distilled, method, terms):
    student_config, runs = distilled
    rows = [row for row in scalars(runs[method]['work_dir']) if 'loss' in row]
    assert rows and all(term in row and math.isfinite(row[term]) for row in rows for term in terms)
    assert all(row['loss_cls'] > 0 and row['loss_bbox'] > 0 for row in rows)
    checkpoint = torch.load(osp.join(runs[method]['work_dir'], 'epoch_1.pth'))
    assert not any(key.startswith('teacher.') for key in checkpoint['state_dict'])
    if method == 'dked':
        assert any('.ddc.' in key for key in checkpoint['state_dict'])
    init_default_scope('mmrotate')
    plain = MODELS.build(Config.fromfile(student_config).model)
    exported = torch.load(runs[method]['exported'])['state_dict']
    plain.load_state_dict(exported, strict=True)
    assert sum(v.numel() for k, v in exported.items() if k in dict(plain.named_parameters())) \
        == sum(p.numel() for p in plain.parameters())
    assert not any('ddc' in key or key.startswith('distill_losses') for key in exported)


def test_exported_students_are_evaluated_on_whole_images_with_the_dota_metric(distilled,
                                                                              tmp_path):
    student_config, runs = distilled
    for method in ('kd-rnet', 'dked'):
        out = run([sys.executable, 'tools/test.py', student_config, runs[method]['exported'],
                   '--work-dir', str(tmp_path / method)])
        metrics = json.load(open(tmp_path / method / 'metrics.json'))
        assert {'dota/mAP', 'dota/AP50'} <= set(metrics)
        assert 0.0 <= metrics['dota/mAP'] <= 1.0
        assert f"dota/mAP: {metrics['dota/mAP']}" in out
        assert '8 patches merged into 2 images' in out


def test_vis_tool_draws_boxes_and_the_gaussian_mask(dota_patches, tmp_path):
    root, _, _ = dota_patches
    image = root / 'DOTA/train/images/P0000.png'
    ann = root / 'DOTA/train/labelTxt/P0000.txt'
    out = tmp_path / 'vis.png'
    run([sys.executable, 'tools/rotated/vis_rotated.py', str(image), '--ann', str(ann),
         '--mask-stride', '4', '--out', str(out)])
    source, drawn = cv2.imread(str(image)), cv2.imread(str(out))
    assert drawn.shape == (192, 384, 3)
    changed = np.abs(drawn[:, :192].astype(int) - source.astype(int)).sum(-1) > 0
    assert changed.any() and changed.mean() < 0.2  # outlines only
    polygon = np.asarray([line.split()[:8] for line in open(ann) if len(line.split()) == 10][0],
                         dtype=np.float32).reshape(4, 2)
    cx, cy = np.round(polygon.mean(0)).astype(int)
    panel = drawn[:, 192:]
    assert panel[cy, cx, 2] >= 150  # red where the mask is ~1
    assert (np.abs(panel.astype(int) - source.astype(int)).sum(-1) == 0).mean() > 0.3
