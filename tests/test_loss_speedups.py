"""Issue 14, item 2: the faster DKED response loss (DDC) and prediction class term, FRS class
term, IFKD head term and HSM distance compute the same values and gradients as the
straightforward formulas they replace.

Each reference below is the previous implementation's formula, written out here; inputs are
odd-sized, 5 FPN levels, batch 2, 450 class channels (9 anchors x 50 classes) for the class terms.
"""
import math

import geoopt
import pytest
import torch
import torch.nn.functional as F
from mmdet.models.task_modules.prior_generators import anchor_inside_flags
from mmdet.structures.bbox import cat_boxes
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

import ifkd_mm  # noqa: F401
from ifkd_mm.distillation.base import DistillBatch
from ifkd_mm.distillation.baselines.frs import (FRSLoss, masked_cls_loss, masked_soft_bce,
                                                richness_mask)
from ifkd_mm.distillation.ifkd import hsm as hsm_lib
from ifkd_mm.distillation.ifkd import losses as ifkd_losses
from ifkd_mm.distillation.ifkd.losses import IFKDHeadLoss
from ifkd_mm.distillation.rotated import dked
from ifkd_mm.distillation.rotated.dked import (MASK_CUTOFF, DKEDResponseLoss,
                                               DynamicDirectionalConv, attention_logits,
                                               axis_target, box_gaussians,
                                               dominant_box_angle, orientation_sum,
                                               oriented_gaussian_mask, rotate_kernel,
                                               soft_label_focal, standardise_channels,
                                               support_window, window_with_halo)
from ifkd_mm.distillation.rotated.kd_rnet import per_anchor
from ifkd_mm.registry import MODELS

from .test_rotated_kd import box_batch, head_outputs, rotated_batch, rotated_head_config

STRIDES = (8, 16, 32, 64, 128)
IMAGE = (300, 370)  # odd level sizes: (38, 47), (19, 24), (10, 12), (5, 6), (3, 3)
SIZES = [(math.ceil(IMAGE[0] / s), math.ceil(IMAGE[1] / s)) for s in STRIDES]
CLASS_CHANNELS = 9 * 50


def levels(channels, seed, dtype=torch.float32, grad=False, scale=1.0, offset=0.0):
    gen = torch.Generator().manual_seed(seed)
    return [(scale * torch.randn(2, channels, *size, generator=gen, dtype=dtype)
             + offset).requires_grad_(grad) for size in SIZES]


def assert_same(new, ref, rtol, atol_scale, scale=None):
    """Equal to ``rtol`` and to ``atol_scale`` times ``scale`` (default: the reference's largest
    magnitude); None (no gradient) only where the reference has none."""
    assert (new is None) == (ref is None)
    if ref is not None:
        scale = float(ref.abs().max()) if scale is None else scale
        torch.testing.assert_close(new, ref, rtol=rtol, atol=atol_scale * scale + 1e-30)


def assert_same_gradients(new_value, ref_value, inputs, rtol, atol_scale):
    """The gradients of two values w.r.t. ``inputs`` agree; the absolute tolerance scales with
    the largest reference gradient of all inputs (some, e.g. the bias of an adapter followed by
    a standardisation, are 0 up to rounding)."""
    new_grads, ref_grads = gradients(new_value, inputs), gradients(ref_value, inputs)
    scale = max((float(g.abs().max()) for g in ref_grads if g is not None), default=0.0)
    for new, ref in zip(new_grads, ref_grads):
        assert_same(new, ref, rtol, atol_scale, scale)


def gradients(value, inputs):
    return torch.autograd.grad(value, inputs, retain_graph=True, allow_unused=True)


# ------------------------------------------------------------------------------------------
# DKED: the DDC's pieces against the previous formulas
# ------------------------------------------------------------------------------------------

def reference_bank(weight, orientations):
    return torch.stack([rotate_kernel(weight, k * (8 // orientations))
                        for k in range(orientations)])


def reference_responses(x, bank, groups):
    orientations, channels = bank.shape[:2]
    out = F.conv2d(x, bank.transpose(0, 1).reshape(channels * orientations, *bank.shape[2:]),
                   padding=1, groups=groups)
    batch, _, height, width = out.shape
    return out.view(batch, channels, orientations, height, width).transpose(1, 2)


def reference_weights(responses, attention):
    return (responses.pow(2) * attention.view(1, 1, -1, 1, 1)).sum(dim=2).softmax(dim=1)


def reference_mix(responses, weights, bank):
    flat = bank.flatten(2)
    gram = torch.einsum('kcn,lcn->ckl', flat, flat)
    norm2 = torch.einsum('bkhw,ckl,blhw->bchw', weights, gram, weights)
    return (weights.unsqueeze(2) * responses).sum(dim=1) / norm2.clamp(min=1e-12).sqrt()


def reference_ddc(x, weight, attention, orientations, groups):
    bank = reference_bank(weight, orientations)
    responses = reference_responses(x, bank, groups)
    weights = reference_weights(responses, attention)
    return reference_mix(responses, weights, bank), weights


def responses_like_the_bank_conv(gen, shape):
    """(B, K, C, H, W) responses in the bank conv's memory layout (channel-major)."""
    batch, orientations, channels, height, width = shape
    return torch.randn(batch, channels, orientations, height, width, generator=gen,
                       dtype=torch.float64).transpose(1, 2).requires_grad_()


def test_attention_logits_and_orientation_sum_gradcheck_in_float64():
    gen = torch.Generator().manual_seed(0)
    for responses in (responses_like_the_bank_conv(gen, (2, 4, 3, 5, 7)),
                      torch.randn(2, 4, 3, 5, 7, generator=gen, dtype=torch.float64,
                                  requires_grad=True)):
        attention = torch.randn(3, generator=gen, dtype=torch.float64, requires_grad=True)
        weights = torch.rand(2, 4, 5, 7, generator=gen, dtype=torch.float64,
                             requires_grad=True)
        assert torch.autograd.gradcheck(attention_logits, (responses, attention))
        assert torch.autograd.gradcheck(orientation_sum, (responses, weights))
        # the formulas they replace
        torch.testing.assert_close(
            attention_logits(responses, attention),
            (responses.pow(2) * attention.view(1, 1, -1, 1, 1)).sum(dim=2))
        torch.testing.assert_close(orientation_sum(responses, weights),
                                   (weights.unsqueeze(2) * responses).sum(dim=1))


@pytest.mark.parametrize('orientations,groups', [(8, None), (4, 2), (2, 1)])
def test_ddc_forward_matches_the_previous_formula_with_its_gradients(orientations, groups):
    torch.manual_seed(1)
    ddc = DynamicDirectionalConv(6, num_orientations=orientations, groups=groups).double()
    with torch.no_grad():
        ddc.attention.copy_(torch.randn(6, dtype=torch.float64))
    x = torch.randn(2, 6, 11, 9, dtype=torch.float64, requires_grad=True)
    probe = torch.randn(2, 6, 11, 9, dtype=torch.float64)
    out = ddc(x)
    ref, _ = reference_ddc(x, ddc.weight, ddc.attention, orientations, ddc.groups)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    assert_same_gradients((probe * out).sum(), (probe * ref).sum(),
                          [x, ddc.weight, ddc.attention], rtol=1e-10, atol_scale=1e-12)


@pytest.mark.parametrize('groups', [None, 1])
def test_teacher_student_responses_are_two_convs_and_train_the_bank_on_the_teacher_only(groups):
    torch.manual_seed(2)
    ddc = DynamicDirectionalConv(4, num_orientations=8, groups=groups).double()
    bank = ddc.bank()
    teacher = torch.randn(2, 4, 7, 10, dtype=torch.float64, requires_grad=True)
    student = torch.randn(2, 4, 7, 10, dtype=torch.float64, requires_grad=True)
    t_out, s_out = ddc.teacher_student_responses(teacher, student, bank)
    t_ref = reference_responses(teacher, bank, ddc.groups)
    s_ref = reference_responses(student, bank.detach(), ddc.groups)
    torch.testing.assert_close(t_out, t_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(s_out, s_ref, rtol=1e-12, atol=1e-12)
    gen = torch.Generator().manual_seed(3)
    t_probe = torch.randn(t_out.shape, generator=gen, dtype=torch.float64)
    s_probe = torch.randn(s_out.shape, generator=gen, dtype=torch.float64)
    inputs = [teacher, student, ddc.weight]
    for new_value, ref_value in (((t_probe * t_out).sum(), (t_probe * t_ref).sum()),
                                 ((s_probe * s_out).sum(), (s_probe * s_ref).sum()),
                                 ((t_probe * t_out).sum() + (s_probe * s_out).sum(),
                                  (t_probe * t_ref).sum() + (s_probe * s_ref).sum())):
        assert_same_gradients(new_value, ref_value, inputs, rtol=1e-10, atol_scale=1e-12)
    # the student's half never reaches the bank; the teacher's never reaches the student
    assert gradients((s_probe * s_out).sum(), [ddc.weight])[0] is None
    assert gradients((t_probe * t_out).sum(), [student])[0] is None


def test_window_with_halo_gives_the_padded_conv_on_the_window():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, 3, 9, 13, generator=gen, dtype=torch.float64)
    filters = torch.randn(3, 1, 3, 3, generator=gen, dtype=torch.float64)
    full = F.conv2d(x, filters, padding=1, groups=3)
    for rows, cols in ((slice(0, 9), slice(0, 13)), (slice(0, 4), slice(5, 13)),
                       (slice(3, 6), slice(2, 3)), (slice(8, 9), slice(0, 1))):
        window = F.conv2d(window_with_halo(x, rows, cols), filters, groups=3)
        torch.testing.assert_close(window, full[..., rows, cols], rtol=1e-12, atol=1e-12)


def test_standardise_channels_is_the_written_out_formula_with_its_gradients():
    gen = torch.Generator().manual_seed(4)
    x = (5 * torch.randn(2, 3, 9, 13, generator=gen, dtype=torch.float64) + 2).requires_grad_()
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    expected = (x - mean) / (var + 1e-5).sqrt()
    out = standardise_channels(x)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    weights = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(torch.autograd.grad((out * weights).sum(), x)[0],
                               torch.autograd.grad((expected * weights).sum(), x)[0],
                               rtol=1e-10, atol=1e-12)
    single = torch.randn(1, 3, 1, 1, dtype=torch.float64)  # one value per channel
    assert torch.equal(standardise_channels(single), torch.zeros_like(single))


def test_support_window_is_the_bounding_box_of_the_nonzeros_over_the_batch():
    weight = torch.zeros(2, 1, 9, 13)
    assert support_window(weight) == (slice(0, 1), slice(0, 1))
    weight[0, 0, 2, 7] = 1e-30
    weight[1, 0, 5, 3] = 0.5
    assert support_window(weight) == (slice(2, 6), slice(3, 8))


# ------------------------------------------------------------------------------------------
# DKED: the response loss against the previous forward
# ------------------------------------------------------------------------------------------

def uncut_mask(boxes, size, stride):
    """The previous ``G``: the Gaussians' maximum, not cut at :data:`MASK_CUTOFF`."""
    if boxes.numel() == 0:
        return torch.zeros(size)
    return box_gaussians(boxes, size, stride).amax(dim=0)


def reference_response_loss(loss, student, teacher, batch):
    """The previous DKEDResponseLoss.forward: the whole maps and the uncut mask, the student's
    DDC run separately with detached parameters, the teacher's DDC output detached."""
    ddc = loss.ddc
    orientations = ddc.num_orientations
    boxes = [sample.gt_instances.bboxes for sample in batch.data_samples]
    drfd = ddc_term = 0
    for s, t, stride in zip(student, teacher, loss.strides):
        size = t.shape[-2:]
        mask = torch.stack([uncut_mask(b, size, stride) for b in boxes]).unsqueeze(1)
        t_out, t_weights = reference_ddc(standardise_channels(t.detach().float()), ddc.weight,
                                         ddc.attention, orientations, ddc.groups)
        s_out, _ = reference_ddc(standardise_channels(loss.adapter(s).float()),
                                 ddc.weight.detach(), ddc.attention.detach(), orientations,
                                 ddc.groups)
        weight = mask.pow(2)
        drfd = drfd + ((weight * (t_out.detach() - s_out).pow(2)).sum()
                       / (weight * t_out.detach().pow(2)).sum().clamp(min=1e-12))
        if orientations >= 4:
            angles = torch.stack([dominant_box_angle(b, size, stride) for b in boxes])
            target = axis_target(angles, orientations // 2).permute(0, 3, 1, 2)
            p_axis = t_weights.view(len(boxes), 2, orientations // 2, *size).sum(dim=1)
            kl = (torch.xlogy(target, target)
                  - target * p_axis.clamp(min=1e-12).log()).sum(dim=1, keepdim=True)
            ddc_term = ddc_term + (weight * kl).sum() / weight.sum().clamp(min=1e-12)
    return dict(loss_dked_drfd=loss.loss_weight * drfd / len(teacher),
                loss_dked_ddc=loss.ddc_loss_weight * ddc_term / len(teacher))


# image 0: two boxes near the top left; image 1: one small box at the bottom right. On the
# finer levels G^2 vanishes (underflows) over part of the map, so the DDC runs on a window.
SPARSE = [[[60., 50., 40., 20., 0.5], [90., 70., 24., 12., -1.0]], [[330., 270., 16., 10., 1.2]]]


@pytest.mark.parametrize('orientations,groups,boxes', [
    (8, None, SPARSE), (4, 2, SPARSE), (2, None, SPARSE), (8, None, [[], []])])
def test_response_loss_matches_the_previous_forward_values_and_gradients(orientations, groups,
                                                                         boxes):
    torch.manual_seed(5)
    loss = DKEDResponseLoss(student_channels=5, teacher_channels=6, num_orientations=orientations,
                            groups=groups, loss_weight=0.7, ddc_loss_weight=1.3)
    with torch.no_grad():
        loss.ddc.attention.copy_(torch.randn(6) / 3)
    student = levels(5, 6, grad=True)
    teacher = levels(6, 7, scale=20.0, offset=3.0)  # a trained teacher: larger, offset
    batch = box_batch(boxes, IMAGE)
    if boxes[0]:  # the window is smaller than the finest level
        mask = torch.stack([oriented_gaussian_mask(sample.gt_instances.bboxes, SIZES[0], 8)
                            for sample in batch.data_samples])
        rows, cols = support_window(mask.pow(2))
        assert (rows.stop - rows.start) * (cols.stop - cols.start) < SIZES[0][0] * SIZES[0][1]
    new = loss(dict(neck=student), dict(neck=teacher), batch)
    ref = reference_response_loss(loss, student, teacher, batch)
    inputs = student + list(loss.adapter.parameters()) + [loss.ddc.weight, loss.ddc.attention]
    for name in ('loss_dked_drfd', 'loss_dked_ddc'):
        torch.testing.assert_close(new[name], torch.as_tensor(ref[name]), rtol=1e-5, atol=1e-7)
    terms = [(new['loss_dked_drfd'], ref['loss_dked_drfd']),
             (new['loss_dked_drfd'] + new['loss_dked_ddc'],
              ref['loss_dked_drfd'] + ref['loss_dked_ddc'])]
    if orientations >= 4 and boxes[0]:
        assert new['loss_dked_ddc'] > 0
        terms.append((new['loss_dked_ddc'], ref['loss_dked_ddc']))
    for new_value, ref_value in terms:
        assert_same_gradients(new_value, ref_value, inputs, rtol=1e-4, atol_scale=1e-5)


def test_mask_is_cut_where_the_gaussian_is_below_the_cutoff():
    box = torch.tensor(SPARSE[0])
    full, mask = uncut_mask(box, SIZES[0], 8), oriented_gaussian_mask(box, SIZES[0], 8)
    below = full < MASK_CUTOFF
    assert (full[below] > 0).any() and (~below).sum() > 20
    assert torch.equal(mask[below], torch.zeros_like(mask[below]))
    assert torch.equal(mask[~below], full[~below])


def subnormal_count(tensor):
    tiny = torch.finfo(tensor.dtype).tiny
    return int(((tensor != 0) & (tensor.abs() < tiny)).sum())


def test_ddc_input_gradients_hold_no_subnormal_numbers(monkeypatch):
    """Subnormal floats (below 1.2e-38) make x86 CPUs several times slower. With the uncut
    mask, G^2 put hundreds of them into the gradient reaching the student's DDC input (the
    window of its standardised map) on every level but the coarsest."""
    windows, window_with_halo = [], dked.window_with_halo

    def recorded_window(x, rows, cols):
        window = window_with_halo(x, rows, cols)
        if window.requires_grad:
            window.register_hook(windows.append)
        return window

    monkeypatch.setattr(dked, 'window_with_halo', recorded_window)
    torch.manual_seed(5)
    loss = DKEDResponseLoss(student_channels=5, teacher_channels=6)
    student = levels(5, 6, grad=True)
    teacher = levels(6, 7, scale=20.0, offset=3.0)
    values = loss(dict(neck=student), dict(neck=teacher), box_batch(SPARSE, IMAGE))
    (values['loss_dked_drfd'] + values['loss_dked_ddc']).backward()
    assert len(windows) == len(STRIDES) and all(g.abs().max() > 0 for g in windows)
    assert [subnormal_count(g) for g in windows] == [0] * len(STRIDES)


def reference_prediction_cls(loss, student, teacher, batch):
    """The previous loss_dked_cls: the anchors the focal loss uses gathered, then summed."""
    sizes = [level.shape[-2:] for level in student['cls_scores']]
    priors = cat_boxes(loss.prior_generator.grid_priors(sizes, device='cpu'))
    s_cls = per_anchor(student['cls_scores'], loss.num_classes)
    t_cls = per_anchor(teacher['cls_scores'], loss.num_classes)
    soft, num_pos, dropped = 0, 0, 0
    for i, sample in enumerate(batch.data_samples):
        valid = torch.cat(loss.prior_generator.valid_flags(sizes, sample.metainfo['pad_shape'],
                                                           'cpu'))
        inside = anchor_inside_flags(priors, valid, sample.metainfo['img_shape'][:2],
                                     loss.allowed_border)
        assigned = loss.assigner.assign(InstanceData(priors=priors[inside]), sample.gt_instances)
        used = assigned.gt_inds >= 0
        soft = soft + soft_label_focal(s_cls[i][inside][used], t_cls[i][inside][used]).sum()
        num_pos += int((assigned.gt_inds > 0).sum())
        dropped += int((~inside).sum()) + int((~used).sum())
    assert dropped > 0  # some anchors are outside the image or ignored: the test can fail
    return (1 - loss.lam) * soft / max(num_pos, 1)


def test_prediction_class_term_matches_the_gathered_anchors_values_and_gradients():
    init_default_scope('mmrotate')
    model = rotated_head_config()
    model.train_cfg.allowed_border = 0  # anchors across the border are left out
    loss = MODELS.build(dict(type='DKEDPredictionLoss', head=model.bbox_head,
                             train_cfg=model.train_cfg, lam=0.5))
    student, teacher = head_outputs(model, 0), head_outputs(model, 1)
    for level in student['cls_scores']:
        level.requires_grad_(True)
    batch = rotated_batch()
    new = loss(student, teacher, batch)['loss_dked_cls']
    ref = reference_prediction_cls(loss, student, teacher, batch)
    assert ref > 0
    torch.testing.assert_close(new, ref, rtol=1e-5, atol=0)
    assert_same_gradients(new, ref, student['cls_scores'], rtol=1e-5, atol_scale=1e-6)


# ------------------------------------------------------------------------------------------
# FRS class term
# ------------------------------------------------------------------------------------------

def reference_masked_cls_loss(student_logits, teacher_logits, mask):
    bce = F.binary_cross_entropy_with_logits(student_logits, teacher_logits.sigmoid(),
                                             reduction='none')
    return (bce * mask[:, None]).sum() / mask.sum()


def test_frs_class_term_is_the_masked_bce_in_float64():
    student = levels(CLASS_CHANNELS, 8, torch.float64, grad=True)
    teacher = levels(CLASS_CHANNELS, 9, torch.float64, scale=3.0, offset=-2.0)
    for s, t in zip(student, teacher):
        mask = richness_mask(t).double()
        ref = reference_masked_cls_loss(s, t, mask)
        torch.testing.assert_close(masked_cls_loss(s, t, mask), ref, rtol=1e-12, atol=0)
        new = masked_soft_bce(s, t.sigmoid(), mask)
        torch.testing.assert_close(new, ref, rtol=1e-12, atol=0)
        assert_same(gradients(new, [s])[0], gradients(ref, [s])[0], rtol=1e-10,
                    atol_scale=1e-12)


def test_frs_loss_matches_the_previous_forward_values_and_gradients():
    torch.manual_seed(10)
    loss = FRSLoss(student_channels=8, teacher_channels=16, warmup_iters=0)
    s_neck, t_neck = levels(8, 11, grad=True), levels(16, 12)
    s_cls = levels(CLASS_CHANNELS, 13, grad=True)
    t_cls = levels(CLASS_CHANNELS, 14, scale=3.0, offset=-2.0)
    new = loss(dict(neck=s_neck, cls_scores=s_cls), dict(neck=t_neck, cls_scores=t_cls), None)
    feat = cls = 0
    for adapter, s, t, s_score, t_score in zip(loss.adapters, s_neck, t_neck, s_cls, t_cls):
        mask = t_score.detach().float().sigmoid().amax(1)
        feat = feat + ((t - adapter(s)).pow(2) * mask[:, None]).sum() / mask.sum()
        cls = cls + reference_masked_cls_loss(s_score, t_score, mask)
    ref = dict(loss_frs_feat=loss.feat_weight * feat, loss_frs_cls=loss.cls_weight * cls)
    inputs = s_neck + s_cls + list(loss.adapters.parameters())
    for name in ref:
        torch.testing.assert_close(new[name], ref[name], rtol=1e-6, atol=0)
        assert_same_gradients(new[name], ref[name], inputs, rtol=1e-5, atol_scale=1e-6)


# ------------------------------------------------------------------------------------------
# IFKD head term (eq. 13)
# ------------------------------------------------------------------------------------------

def reference_head_level(student_logits, teacher_logits, mask):
    """The previous soft_bce and masked_level_sum: per-location class sums, then the mask."""
    bce = F.binary_cross_entropy_with_logits(student_logits, teacher_logits.detach().sigmoid(),
                                             reduction='none').sum(dim=1, keepdim=True)
    if mask is not None:
        bce = bce * mask
    return bce.sum(dim=(1, 2, 3)).mean() / bce[0, 0].numel()


def test_ifkd_head_level_term_is_the_masked_bce_of_eq13_in_float64():
    student = levels(CLASS_CHANNELS, 15, torch.float64, grad=True)
    teacher = levels(CLASS_CHANNELS, 16, torch.float64, scale=3.0, offset=-2.0)
    gen = torch.Generator().manual_seed(17)
    for s, t in zip(student, teacher):
        for mask in (None, 2 * torch.rand(2, 1, *s.shape[-2:], generator=gen,
                                          dtype=torch.float64)):
            new, ref = ifkd_losses.masked_soft_bce(s, t, mask), reference_head_level(s, t, mask)
            torch.testing.assert_close(new, ref, rtol=1e-12, atol=0)
            assert_same(gradients(new, [s])[0], gradients(ref, [s])[0], rtol=1e-10,
                        atol_scale=1e-12)


@pytest.mark.parametrize('hsm', [dict(), None])
def test_ifkd_head_loss_matches_the_previous_forward_values_and_gradients(hsm):
    loss = IFKDHeadLoss(beta=0.5, hsm=hsm)
    s_neck, t_neck = levels(16, 18, grad=True), levels(16, 19)
    s_cls = levels(CLASS_CHANNELS, 20, grad=True)
    t_cls = levels(CLASS_CHANNELS, 21, scale=3.0, offset=-2.0)
    batch = DistillBatch(inputs=torch.zeros(2, 3, *IMAGE), data_samples=[],
                         mean=torch.zeros(1, 3, 1, 1), std=torch.ones(1, 3, 1, 1))
    new = loss(dict(neck=s_neck, cls_scores=s_cls), dict(neck=t_neck, cls_scores=t_cls),
               batch)['loss_ifkd_head']
    masks = loss.hsm(t_neck, s_neck) if hsm is not None else [None] * len(SIZES)
    ref = 0.5 * sum(reference_head_level(s, t, m) for s, t, m in zip(s_cls, t_cls, masks))
    torch.testing.assert_close(new, ref, rtol=1e-6, atol=0)
    inputs = s_cls + s_neck
    assert_same_gradients(new, ref, inputs, rtol=1e-5, atol_scale=1e-6)


# ------------------------------------------------------------------------------------------
# HSM distance (eq. 9-10)
# ------------------------------------------------------------------------------------------

def reference_hsm_distance(teacher, student, c, clip_radius):
    """The previous implementation: scale, clip, then geoopt's PoincareBall expmap0 and dist on
    the (B, C, H, W) features in float64."""
    ball = geoopt.PoincareBall(c=torch.tensor(c, dtype=torch.float64))
    teacher, student = teacher.double(), student.double()
    scale = teacher.norm(dim=1, keepdim=True).mean(dim=(2, 3), keepdim=True)

    def to_ball(x):
        x = x / scale
        return ball.expmap0(x * (clip_radius / x.norm(dim=1, keepdim=True).clamp_min(1e-12))
                            .clamp(max=1.0), dim=1)
    return ball.dist(to_ball(teacher), to_ball(student), dim=1).unsqueeze(1)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('c,clip_radius', [(1.0, None), (0.5, None), (2.0, 1.0), (1.0, 8.0)])
def test_hsm_distance_in_plane_coordinates_equals_geoopt_on_the_full_vectors(dtype, c, clip_radius):
    """256 channels, odd level sizes, FPN-like norms; some student vectors equal the teacher's,
    some nearly, some are zero, some lie beyond the clip radius."""
    teacher = [level * 16 / 16 for level in levels(256, 22, dtype)]
    student = [1.2 * t + 0.5 * s for t, s in zip(teacher, levels(256, 23, dtype))]
    student[0][0, :, 3:6, 4:9] = teacher[0][0, :, 3:6, 4:9]
    student[0][1, :, 2, 2] = teacher[0][1, :, 2, 2] * (1 + 1e-6)
    student[1][0, :, 1, 1] = 0
    teacher[2][1, :, 4, 5] *= 30
    radius = hsm_lib.default_clip_radius(c) if clip_radius is None else clip_radius
    for t, s in zip(teacher, student):
        new = hsm_lib.hyperbolic_feature_distance(t, s, c, clip_radius)
        ref = reference_hsm_distance(t, s, c, radius)
        assert new.dtype == torch.float64 and new.shape == (2, 1, *t.shape[-2:])
        torch.testing.assert_close(new, ref, rtol=1e-9, atol=1e-12)
    equal = hsm_lib.hyperbolic_feature_distance(teacher[0], student[0], c)[0, :, 3:6, 4:9]
    assert equal.abs().max() < 1e-12  # equal vectors: zero up to rounding


def test_hsm_of_all_levels_in_one_call_equals_the_reference_of_each_level():
    """The levels' locations share one pass through the ball; each level keeps its own scale."""
    teacher = levels(256, 26)
    student = [0.8 * t + 0.3 * s for t, s in zip(teacher, levels(256, 27))]
    teacher[1] = teacher[1] * 40  # a level whose scale differs from the others'
    distances = hsm_lib.hyperbolic_feature_distances(teacher, student, c=0.5)
    assert [d.shape for d in distances] == [(2, *size) for size in SIZES]
    for new, t, s in zip(distances, teacher, student):
        ref = reference_hsm_distance(t, s, 0.5, hsm_lib.default_clip_radius(0.5))[:, 0]
        torch.testing.assert_close(new, ref, rtol=1e-9, atol=1e-12)
    masks = hsm_lib.HyperbolicSimilarityMask(c=0.5)(teacher, student)
    for mask, d in zip(masks, distances):
        torch.testing.assert_close(mask[:, 0], ((d + 1e-3) / (d.mean(dim=(1, 2), keepdim=True)
                                                           + 1e-3)).float())


def test_plane_coordinates_keep_the_norms_and_the_inner_product():
    teacher, student = levels(256, 24, torch.float64)[1], levels(256, 25, torch.float64)[1]
    teacher[0, :, 2, 3] = 0
    student[1, :, 4, 4] = -2 * teacher[1, :, 4, 4]
    t2, s2 = hsm_lib.plane_coordinates(teacher, student)
    assert t2.shape == s2.shape == (2, 2, *teacher.shape[-2:])
    for plane, full in ((t2, teacher), (s2, student)):
        torch.testing.assert_close(plane.norm(dim=1), full.norm(dim=1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close((t2 * s2).sum(dim=1), (teacher * student).sum(dim=1),
                               rtol=1e-12, atol=1e-12)
    assert (t2[:, 1] == 0).all() and (s2[:, 1] >= 0).all()
    torch.testing.assert_close(s2[0, :, 2, 3], torch.stack([torch.tensor(0.0).double(),
                                                            student[0, :, 2, 3].norm()]))
