"""DKED (Huang, Li and Tao, "Extracting and Distilling Direction-Adaptive Knowledge for
Lightweight Object Detection in Remote Sensing Images", poster) on mmrotate detectors.

The poster gives the structure and three formulas, no code and no hyper-parameters; every
default below that is not in the poster is marked as this project's choice (README,
"Rotated-box distillation").

1. Dynamic directional convolution (DDC, :class:`DynamicDirectionalConv`): a bank of
   orientation-rotated copies of a base kernel, mixed by input-conditioned attention. It lives in
   :class:`DKEDResponseLoss`, a training-time module of the distiller: the exported student has
   no extra layer and the same inference cost.
2. Feature correlation distillation (:class:`DKEDCorrelationLoss`): non-local (pairwise
   affinity) correlation of backbone features, teacher vs student.
3. Direction-adaptive feature response distillation (:class:`DKEDResponseLoss`):
   ``L_drfd = ||G * (Y'_T - Y'_S)||^2`` on the FPN responses after DDC, ``G`` an oriented
   Gaussian mask of the GT boxes; here on per-channel standardised responses, divided by the
   teacher's response energy ``||G * Y'_T||^2``. The DDC is trained not by this loss (it would
   learn to hide the difference) but to pick the GT box's orientation on the teacher's features.
4. Prediction distillation (:class:`DKEDPredictionLoss`):
   ``L_loc = JOL_obb(r_S, r_GT) + lambda L_obb(r_T, r_S, r_GT)`` with
   ``L_obb = JOL_obb(r_S, r_GT)`` where ``JOL_obb(r_S, r_GT) + delta > JOL_obb(r_T, r_GT)``,
   else 0; ``L_cls = lambda JOL_cls(c_S, c_GT) + (1 - lambda) JOL_cls(c_T, c_S)``. JOL (GGHL's
   joint loss) is replaced by the detector's own box loss and a focal loss on soft labels.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.task_modules.prior_generators import anchor_inside_flags
from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import cat_boxes, get_box_tensor
from mmengine.structures import InstanceData
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from ...registry import MODELS, register_model
from ..base import DistillBatch, DistillLoss, as_levels
from ..baselines.fitnet import paired_levels
from .kd_rnet import per_anchor

#: The 8 outer taps of a 3x3 kernel, clockwise on screen (x right, y down) from the top left.
RING = ((0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0))


# ------------------------------------------------------------------------------------------
# Pure functions
# ------------------------------------------------------------------------------------------

def rotate_kernel(weight: Tensor, steps: int) -> Tensor:
    """3x3 kernels ``(..., 3, 3)`` turned clockwise by ``steps`` x 45 degrees.

    The outer ring of taps is shifted by ``steps`` places, the centre stays (the active rotating
    filters of ORN); 2 steps are exactly a 90-degree rotation (``torch.rot90(w, -1)``).
    """
    if weight.shape[-2:] != (3, 3):
        raise ValueError(f'DDC rotates 3x3 kernels, got {tuple(weight.shape[-2:])}')
    flat = [r * 3 + c for r, c in RING]
    source = list(range(9))
    for i, index in enumerate(flat):
        source[flat[(i + steps) % 8]] = index
    return weight.flatten(-2)[..., source].reshape(weight.shape)


def box_gaussians(boxes: Tensor, size: Tuple[int, int], stride: float,
                  sigma_ratio: float = 0.25) -> Tensor:
    """One oriented Gaussian per box on one feature level, (n, H, W).

    ``boxes``: ``(n, 5)`` rotated boxes ``(cx, cy, w, h, theta)`` in input pixels (mmrotate's
    convention: ``w`` along ``(cos theta, sin theta)``). Cell ``(i, j)`` sits at pixel
    ``((j + 0.5) s, (i + 0.5) s)``. Along the box axes the standard deviations are
    ``sigma_ratio * (w, h)`` (so 0.25 gives ``exp(-2)`` at the box's edges), at least ``s / 2``
    so that every box lights up its cell on every level.
    """
    height, width = size
    ys = (torch.arange(height, device=boxes.device, dtype=boxes.dtype) + 0.5) * stride
    xs = (torch.arange(width, device=boxes.device, dtype=boxes.dtype) + 0.5) * stride
    cx, cy, w, h, theta = (boxes[:, k, None, None] for k in range(5))
    dx, dy = xs[None, None, :] - cx, ys[None, :, None] - cy
    along = dx * torch.cos(theta) + dy * torch.sin(theta)
    across = -dx * torch.sin(theta) + dy * torch.cos(theta)
    sigma_w = (sigma_ratio * w).clamp(min=stride / 2)
    sigma_h = (sigma_ratio * h).clamp(min=stride / 2)
    return torch.exp(-0.5 * ((along / sigma_w) ** 2 + (across / sigma_h) ** 2))


#: :func:`oriented_gaussian_mask` is 0 below this value (5.3 standard deviations from a box)
MASK_CUTOFF = 1e-6


def oriented_gaussian_mask(boxes: Tensor, size: Tuple[int, int], stride: float,
                           sigma_ratio: float = 0.25) -> Tensor:
    """``G`` of L_drfd on one feature level: the max over boxes of :func:`box_gaussians`,
    (H, W), set to 0 below :data:`MASK_CUTOFF`; zeros without boxes.

    The cut changes no loss beyond float32 precision (a cell below it weighs ``G^2 < 1e-12``
    against about 1 at a box). Without it ``G^2`` fades into subnormal numbers (below 1.2e-38,
    13 standard deviations out) that fill the loss's gradients, and x86 CPUs handle those
    several times slower: the DDC's backward pass took 7 times as long. It also shrinks the
    window the DDC runs on (:func:`support_window`).
    """
    if boxes.numel() == 0:
        return boxes.new_zeros(size)
    mask = box_gaussians(boxes, size, stride, sigma_ratio).amax(dim=0)
    return mask.masked_fill(mask < MASK_CUTOFF, 0.0)


def dominant_box_angle(boxes: Tensor, size: Tuple[int, int], stride: float,
                       sigma_ratio: float = 0.25) -> Tensor:
    """At every cell, the angle of the long axis of the box whose Gaussian is largest there
    (the box that sets ``G``), radians, (H, W); zeros without boxes."""
    if boxes.numel() == 0:
        return boxes.new_zeros(size)
    long_axis = torch.where(boxes[:, 2] >= boxes[:, 3], boxes[:, 4], boxes[:, 4] + math.pi / 2)
    return long_axis[box_gaussians(boxes, size, stride, sigma_ratio).argmax(dim=0)]


def axis_target(theta: Tensor, num_axes: int) -> Tensor:
    """Soft target ``(..., num_axes)`` over axes at ``k * 180 / num_axes`` degrees (clockwise
    on screen, as mmrotate's angles) for line angles ``theta`` (radians, taken mod 180 degrees):
    linear between the two nearest axes."""
    position = torch.remainder(theta / (math.pi / num_axes), num_axes)
    lower = position.floor()
    upper_share = (position - lower).unsqueeze(-1)
    lower = lower.long() % num_axes
    bins = torch.arange(num_axes, device=theta.device)
    return ((bins == lower.unsqueeze(-1)) * (1 - upper_share)
            + (bins == ((lower + 1) % num_axes).unsqueeze(-1)) * upper_share)


def rotated_box_tensor(boxes) -> Tensor:
    """GT boxes (mmrotate ``RotatedBoxes``, mmdet ``HorizontalBoxes`` or a tensor) as (n, 5)."""
    tensor = get_box_tensor(boxes)
    if tensor.shape[-1] == 5:
        return tensor
    if tensor.shape[-1] != 4:
        raise ValueError(f'GT boxes of {tensor.shape[-1]} values: expected 4 or 5')
    x1, y1, x2, y2 = tensor.unbind(-1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, torch.zeros_like(x1)],
                       dim=-1)


def nonlocal_affinity(feature: Tensor, max_size: int) -> Tensor:
    """Non-local correlation ``A_ij = <f_i, f_j> / (|f_i| |f_j|)`` of all location pairs.

    ``feature`` (B, C, H, W) is average-pooled to at most ``max_size`` per side first (the
    matrix has (HW)^2 entries). Cosine affinities do not depend on the channel count, so
    student and teacher compare directly. Returns (B, HW, HW).
    """
    height, width = feature.shape[-2:]
    if max(height, width) > max_size:
        feature = F.adaptive_avg_pool2d(feature, (min(height, max_size), min(width, max_size)))
    flat = F.normalize(feature.flatten(2).float(), dim=1)
    return flat.transpose(1, 2) @ flat


def standardise_channels(feature: Tensor, eps: float = 1e-5) -> Tensor:
    """Each channel of ``(B, C, H, W)`` to zero mean and unit variance over batch and locations.

    PKD's normalisation of FPN responses (population variance, ``eps`` as BatchNorm's: a
    constant channel becomes 0). It removes the scale gap between a trained teacher's responses
    and a fresh student's, and weighs every channel alike. Computed by batch norm without
    affine parameters or running statistics (one fused pass, 4x faster than the moments
    written out); a single value per channel standardises to 0.
    """
    if feature.numel() == feature.shape[1]:
        return feature - feature
    return F.batch_norm(feature, None, None, training=True, eps=eps)


def relative_response_error(teacher: Tensor, student: Tensor, mask: Tensor) -> Tensor:
    """``||G * (Y_T - Y_S)||^2 / ||G * Y_T||^2`` summed over batch, channels and locations.

    ``mask`` ``G`` (B, 1, H, W) broadcasts over channels; the poster's Hadamard product inside
    the squared norm weighs each location by ``G^2``. 0 when the student equals the teacher,
    exactly 1 when it is silent (``Y_S = 0``), 0 when the mask is empty.
    """
    weight = mask.pow(2)
    error = (weight * (teacher - student).pow(2)).sum()
    energy = (weight * teacher.pow(2)).sum()
    return error / energy.clamp(min=1e-12)


def axis_divergence(weights: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """``sum G^2 KL(target || p_axis) / sum G^2`` over batch and locations.

    ``weights`` (B, K, H, W): a DDC's orientation attention; kernels ``k`` and ``k + K / 2``
    (turned by 180 degrees) share an axis, so ``p_axis`` (B, K / 2, H, W) adds their weights.
    ``target`` (B, H, W, K / 2) from :func:`axis_target`; ``mask`` ``G`` (B, 1, H, W).
    0 when the mask is empty.
    """
    batch, orientations, height, width = weights.shape
    p_axis = weights.view(batch, 2, orientations // 2, height, width).sum(dim=1)
    target = target.permute(0, 3, 1, 2)
    kl = (torch.xlogy(target, target) - target * p_axis.clamp(min=1e-12).log()).sum(dim=1)
    weight = mask.squeeze(1).pow(2)
    return (weight * kl).sum() / weight.sum().clamp(min=1e-12)


def teacher_bounded(student_loss: Tensor, teacher_loss: Tensor, delta: float) -> Tensor:
    """``L_obb``: the student's loss where ``student + delta > teacher``, 0 elsewhere."""
    return torch.where(student_loss + delta > teacher_loss, student_loss,
                       torch.zeros_like(student_loss))


def soft_label_focal(student_logits: Tensor, teacher_logits: Tensor, gamma: float = 2.0) -> Tensor:
    """``JOL_cls(c_T, c_S)``: focal BCE of the student's sigmoid scores against the teacher's.

    ``BCE(sigmoid(z_s), p_t) |sigmoid(z_s) - p_t|^gamma`` per class (the focal loss with soft
    labels, as GFL's quality focal loss); ``p_t = sigmoid(z_t)`` is detached.
    """
    target = teacher_logits.detach().float().sigmoid()
    logits = student_logits.float()
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction='none')
    return bce * (logits.sigmoid() - target).abs().pow(gamma)


# ------------------------------------------------------------------------------------------
# Dynamic directional convolution
# ------------------------------------------------------------------------------------------

def bank_filters(bank: Tensor) -> Tensor:
    """A DDC bank (K, C, C / groups, 3, 3) as the filters of one conv, (C K, C / groups, 3, 3).

    Output channel ``c * K + k`` is kernel ``k`` of channel ``c`` (channel-major, so that each
    conv group keeps its input channels).
    """
    return bank.transpose(0, 1).reshape(-1, *bank.shape[2:])


def split_orientations(out: Tensor, orientations: int) -> Tensor:
    """The output (B, C K, H, W) of :func:`bank_filters` as (B, K, C, H, W), a view."""
    batch, channels, height, width = out.shape
    return out.view(batch, channels // orientations, orientations, height,
                    width).transpose(1, 2)


class _TeacherStudentBank(torch.autograd.Function):
    """``conv(cat([teacher, student]), filters)`` in one call, returned as the two halves.

    The filters' gradient comes from the teacher's half only: for the student's half they are
    constants, as if detached (the DDC is not trained by L_drfd), and the student's input gets
    its gradient through them.
    """

    @staticmethod
    def forward(ctx, teacher: Tensor, student: Tensor, filters: Tensor, padding: int,
                groups: int) -> Tuple[Tensor, Tensor]:
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(teacher, student, filters)
        ctx.padding, ctx.groups = padding, groups
        out = F.conv2d(torch.cat([teacher, student]), filters, padding=padding, groups=groups)
        return out.split([teacher.shape[0], student.shape[0]])

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_teacher: Optional[Tensor], grad_student: Optional[Tensor]):
        teacher, student, filters = ctx.saved_tensors
        conv = dict(bias_sizes=None, stride=(1, 1), padding=(ctx.padding, ctx.padding),
                    dilation=(1, 1), transposed=False, output_padding=(0, 0), groups=ctx.groups)
        grad_t = grad_s = grad_filters = None
        if grad_teacher is not None and (ctx.needs_input_grad[0] or ctx.needs_input_grad[2]):
            grad_t, grad_filters, _ = torch.ops.aten.convolution_backward(
                grad_teacher, teacher, filters,
                output_mask=(ctx.needs_input_grad[0], ctx.needs_input_grad[2], False), **conv)
        if grad_student is not None and ctx.needs_input_grad[1]:
            grad_s = torch.ops.aten.convolution_backward(
                grad_student, student, filters, output_mask=(True, False, False), **conv)[0]
        return grad_t, grad_s, grad_filters, None, None


class _AttentionLogits(torch.autograd.Function):
    """``sum_c v_c Y_k[c]^2`` (B, K, H, W) of responses Y (B, K, C, H, W), one orientation at a
    time (no temporary of the responses' size in the forward pass)."""

    @staticmethod
    def forward(ctx, responses: Tensor, attention: Tensor) -> Tensor:
        ctx.save_for_backward(responses, attention)
        batch, orientations, channels, height, width = responses.shape
        logits = responses.new_empty(batch, orientations, 1, height * width)
        rows = attention.view(1, 1, channels).expand(batch, 1, channels)
        for k in range(orientations):
            torch.bmm(rows, responses[:, k].square().flatten(2), out=logits[:, k])
        return logits.view(batch, orientations, height, width)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_logits: Tensor):
        responses, attention = ctx.saved_tensors
        # Y_k[c] dL/dlogit_k, in the responses' memory layout (the bank conv's)
        scaled = torch.mul(responses, grad_logits.unsqueeze(2), out=torch.empty_like(responses))
        grad_attention = None
        if ctx.needs_input_grad[1]:
            # sum over batch, orientations and locations of Y_k[c]^2 dL/dlogit_k, channel by
            # channel: one dot product per (b, c, k) row of locations
            rows = responses.shape[-2] * responses.shape[-1]
            dots = torch.bmm(scaled.transpose(1, 2).reshape(-1, 1, rows),
                             responses.transpose(1, 2).reshape(-1, rows, 1))
            grad_attention = dots.view(responses.shape[0], responses.shape[2], -1).sum(dim=(0, 2))
        grad_responses = None
        if ctx.needs_input_grad[0]:
            grad_responses = scaled.mul_(2 * attention.view(1, 1, -1, 1, 1))
        return grad_responses, grad_attention


class _OrientationSum(torch.autograd.Function):
    """``sum_k a_k Y_k`` (B, C, H, W) of responses Y (B, K, C, H, W) and weights a
    (B, K, H, W), accumulated in place (no temporary of the responses' size)."""

    @staticmethod
    def forward(ctx, responses: Tensor, weights: Tensor) -> Tensor:
        ctx.save_for_backward(responses, weights)
        total = responses[:, 0] * weights[:, :1]
        for k in range(1, responses.shape[1]):
            total.addcmul_(responses[:, k], weights[:, k:k + 1])
        return total

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        responses, weights = ctx.saved_tensors
        grad_responses = grad_weights = None
        if ctx.needs_input_grad[0]:
            grad_responses = torch.mul(grad.unsqueeze(1), weights.unsqueeze(2),
                                       out=torch.empty_like(responses))
        if ctx.needs_input_grad[1]:
            grad_weights = torch.stack([(grad * responses[:, k]).sum(dim=1)
                                        for k in range(responses.shape[1])], dim=1)
        return grad_responses, grad_weights


def attention_logits(responses: Tensor, attention: Tensor) -> Tensor:
    """The DDC's attention logits ``sum_c v_c Y_k[c]^2``, (B, K, H, W), of responses
    (B, K, C, H, W) and per-channel weights ``v`` (C, )."""
    return _AttentionLogits.apply(responses, attention.to(responses.dtype))


def orientation_sum(responses: Tensor, weights: Tensor) -> Tensor:
    """``sum_k a_k Y_k``, (B, C, H, W), of responses (B, K, C, H, W) and weights (B, K, H, W)."""
    return _OrientationSum.apply(responses, weights.to(responses.dtype))


def support_window(weight: Tensor) -> Tuple[slice, slice]:
    """The rows and columns of the smallest window holding every nonzero of ``weight``
    (..., H, W), over all leading dimensions; the first cell when there is none."""
    nonzero = weight.ne(0).flatten(0, -3).any(dim=0)
    rows, cols = nonzero.any(dim=1).nonzero(), nonzero.any(dim=0).nonzero()
    if rows.numel() == 0:
        return slice(0, 1), slice(0, 1)
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def window_with_halo(x: Tensor, rows: slice, cols: slice) -> Tensor:
    """``x`` (..., H, W) on ``rows`` x ``cols`` and one cell around, zero outside the map: a
    3x3 conv without padding of it is the padded conv of ``x`` on the window."""
    height, width = x.shape[-2:]
    top, bottom = max(rows.start - 1, 0), min(rows.stop + 1, height)
    left, right = max(cols.start - 1, 0), min(cols.stop + 1, width)
    pads = (left - cols.start + 1, cols.stop + 1 - right, top - rows.start + 1,
            rows.stop + 1 - bottom)
    return F.pad(x[..., top:bottom, left:right], pads)


class DynamicDirectionalConv(nn.Module):
    """DDC: a 3x3 base kernel, its ``num_orientations`` rotated copies, mixed per location.

    The bank holds the base kernel turned by ``k * 360 / num_orientations`` degrees
    (:func:`rotate_kernel`). Each copy gives an orientation response ``Y_k = W_k * x``; the
    attention ``a_k = softmax_k(sum_c v_c Y_k[c]^2)`` (``v`` learnt) is computed at every
    location from the responses themselves, and ``DDC(x) = sum_k a_k Y_k / ||sum_k a_k W_k||`` is
    the response of the per-input, per-location filter ``sum_k a_k W_k`` scaled to unit L2 norm
    (its norm comes from the bank's Gram matrix). Because the attention treats all orientations
    alike, turning the input by one kernel step (e.g. 90 degrees with 8 orientations = 2 steps)
    turns the output with it and permutes the orientation responses.

    The unit norm of the mixed filter fixes the response scale (mixing opposite orientations of
    an odd kernel, which cancel, cannot shrink it). It does not stop a unit-norm filter from
    turning to the frequencies where its inputs are weak (a high-pass filter on smooth maps):
    :class:`DKEDResponseLoss` therefore trains it on the GT orientation, not on the distillation
    loss it is part of.

    Args:
        channels: input = output channels.
        num_orientations: 1, 2, 4 or 8 copies (45-degree steps of the ring rotation).
        groups: conv groups; ``None`` = depthwise (one directional filter per channel).
    """

    def __init__(self, channels: int, num_orientations: int = 8,
                 groups: Optional[int] = None) -> None:
        super().__init__()
        if num_orientations not in (1, 2, 4, 8):
            raise ValueError(f'num_orientations must be 1, 2, 4 or 8, got {num_orientations}')
        groups = channels if groups is None else groups
        if channels % groups:
            raise ValueError(f'channels={channels} is not divisible by groups={groups}')
        self.channels, self.groups, self.num_orientations = channels, groups, num_orientations
        self.weight = nn.Parameter(torch.empty(channels, channels // groups, 3, 3))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.attention = nn.Parameter(torch.full((channels, ), 1.0 / channels))

    def bank(self) -> Tensor:
        """The rotated kernels, (num_orientations, C, C / groups, 3, 3)."""
        step = 8 // self.num_orientations
        return torch.stack([rotate_kernel(self.weight, k * step)
                            for k in range(self.num_orientations)])

    def orientation_responses(self, x: Tensor, bank: Optional[Tensor] = None) -> Tensor:
        """``Y_k = W_k * x`` for every orientation k, (B, num_orientations, C, H, W)."""
        bank = self.bank() if bank is None else bank
        out = F.conv2d(x, bank_filters(bank).to(x.dtype), padding=1, groups=self.groups)
        return split_orientations(out, bank.shape[0])

    def teacher_student_responses(self, teacher: Tensor, student: Tensor, bank: Tensor,
                                  padding: int = 1) -> Tuple[Tensor, Tensor]:
        """:meth:`orientation_responses` of both in one conv, (B, K, C, H', W') each.

        The bank gets its gradient from the teacher's responses only: for the student's it is a
        constant (``bank.detach()``), through which the student's input gets its gradient.
        ``padding`` 0 takes inputs already padded (:func:`window_with_halo`).
        """
        filters = bank_filters(bank).to(teacher.dtype)
        t_out, s_out = _TeacherStudentBank.apply(teacher, student.to(teacher.dtype), filters,
                                                 padding, self.groups)
        return (split_orientations(t_out, bank.shape[0]),
                split_orientations(s_out, bank.shape[0]))

    def orientation_weights(self, responses: Tensor,
                            attention: Optional[Tensor] = None) -> Tensor:
        """The attention ``a_k = softmax_k(sum_c v_c Y_k[c]^2)`` per location, (B, K, H, W);
        ``attention`` replaces ``v`` (e.g. detached)."""
        attention = self.attention if attention is None else attention
        return attention_logits(responses, attention).softmax(dim=1)

    def mix(self, responses: Tensor, weights: Tensor, bank: Tensor) -> Tensor:
        """``sum_k a_k Y_k / ||sum_k a_k W_k||``, (B, C, H, W).

        ``||sum_k a_k W_k||^2 = sum_kl a_k a_l <W_k, W_l>`` per channel: the bank's Gram matrix
        (C, K K) times the products ``a_k a_l`` (B, K K, H W), one matrix product.
        """
        flat = bank.flatten(2).to(responses.dtype)  # (K, C, C / groups * 9)
        gram = torch.einsum('kcn,lcn->ckl', flat, flat).flatten(1)
        batch, _, height, width = weights.shape
        pairs = (weights.unsqueeze(2) * weights.unsqueeze(1)).view(batch, -1, height * width)
        norm2 = torch.matmul(gram, pairs).view(batch, -1, height, width)
        return orientation_sum(responses, weights) / norm2.clamp(min=1e-12).sqrt()

    def forward(self, x: Tensor) -> Tensor:
        bank = self.bank()
        responses = self.orientation_responses(x, bank)
        return self.mix(responses, self.orientation_weights(responses), bank)


# ------------------------------------------------------------------------------------------
# Loss modules
# ------------------------------------------------------------------------------------------

@register_model
class DKEDCorrelationLoss(DistillLoss):
    """Feature correlation distillation on backbone stages (DKED, part 2).

    ``loss_weight * sum_stages mean_ij (A_S[i, j] - A_T[i, j])^2`` with ``A`` the non-local
    cosine affinity of :func:`nonlocal_affinity`. The poster names the quantity only; the
    affinity form, the stages and the weight are this project's choices.

    Args:
        stages: indices into the backbone outputs of both detectors (default: the last two,
            strides 16 and 32 for ResNets and mmdet's MobileNetV2 alike).
        max_size: side to which larger maps are pooled before the affinity.
        loss_weight: weight of the summed stage losses.
    """

    requires = ('backbone', )

    def __init__(self, stages: Sequence[int] = (-2, -1), max_size: int = 16,
                 loss_weight: float = 1.0, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.stages, self.max_size, self.loss_weight = tuple(stages), max_size, loss_weight

    def forward(self, student: Dict[str, object], teacher: Dict[str, object],
                batch: DistillBatch) -> Dict[str, Tensor]:
        s_stages, t_stages = as_levels(student['backbone']), as_levels(teacher['backbone'])
        loss = 0.
        for stage in self.stages:
            s, t = s_stages[stage], t_stages[stage].detach()
            if s.shape[-2:] != t.shape[-2:]:
                raise ValueError(f'DKEDCorrelationLoss: backbone stage {stage} is '
                                 f'{tuple(s.shape[-2:])} in the student and '
                                 f'{tuple(t.shape[-2:])} in the teacher: choose stages of '
                                 'equal stride')
            diff = nonlocal_affinity(s, self.max_size) - nonlocal_affinity(t, self.max_size)
            loss = loss + diff.pow(2).mean()
        return dict(loss_dked_corr=self.loss_weight * loss)


@register_model
class DKEDResponseLoss(DistillLoss):
    """Direction-adaptive feature response distillation (DKED, part 3), and the DDC's training.

    The poster: ``L_drfd = ||G * (Y'_T - Y'_S)||^2``, ``Y'`` the FPN responses after DDC, ``G``
    an oriented Gaussian mask of the GT boxes; no normalisation, no weight, and nothing on how
    the DDC is trained. Here, per FPN level, averaged over the levels:

    ``loss_dked_drfd = ||G * (Y'_T - Y'_S)||^2 / ||G * Y'_T||^2`` (:func:`relative_response_error`)
    with ``Y'_T = DDC(std(F_T))``, ``Y'_S = DDC(std(adapt(F_S)))``:

    * one DDC shared by both sides and all levels (the responses are compared in the same
      direction-adaptive space); ``adapt`` a 1x1 conv only when the channel counts differ;
    * ``std`` (:func:`standardise_channels`, as PKD): per channel over batch and locations.
      On raw responses the demo's first ``loss_dked_drfd`` was near 11,500 (a trained teacher's
      FPN responses are far larger than a fresh student's) and swamped the detection losses
      under gradient clipping;
    * ``G`` enters squared, as the poster's Hadamard product inside the squared norm (an earlier
      version weighted by ``G``); :func:`oriented_gaussian_mask`;
    * divided by the teacher's masked energy through the DDC: 0 when the student matches the
      teacher, exactly 1 for a silent student, about 2 for an unrelated one of equal energy,
      whatever the teacher's scale. The denominator does not depend on the student, whose
      gradient is the poster's up to a positive factor.

    **The DDC is not trained by** ``L_drfd`` (its parameters are detached there): applied to
    both sides and trained to lower their difference, it learnt to look where both responses
    vanish (trained alone on fixed smooth maps it removed 96-99.9 % of the loss while the
    teacher's energy through it fell 100-fold), and with the energy ratio above it still found
    the directions where teacher and student agree by chance (-60 to -85 %). Instead it is
    trained, on the teacher's features only, to do what the poster says it does: generate the
    filter that "matches the optimal orientation based on the input". ``loss_dked_ddc`` is
    :func:`axis_divergence`, the ``G^2``-weighted KL divergence from the GT box's long axis at
    each location (:func:`dominant_box_angle`, spread over the two nearest kernel axes by
    :func:`axis_target`) to the DDC's attention over its kernel axes, on the teacher's
    standardised responses. It reaches the DDC's parameters only (teacher features and GT are
    fixed), so it cannot change the student; with fewer than 4 orientations there is no axis
    to choose and the DDC stays as initialised (``loss_dked_ddc`` = 0).

    DDC and the adapter are children of the distiller: trained, then dropped at export.

    Per level the DDC runs once on teacher and student together
    (:meth:`DynamicDirectionalConv.teacher_student_responses`), and only on the window of the
    cells where ``G^2 > 0`` (:func:`support_window`): both terms are 0 elsewhere.

    Args:
        student_channels, teacher_channels: FPN channels.
        strides: the FPN levels' strides (mmrotate rotated RetinaNet: 8 ... 128).
        num_orientations, groups: of the DDC.
        sigma_ratio: of the Gaussian mask.
        loss_weight: weight of ``L_drfd`` (the poster gives none: 1, the loss being of the
            order of the detection losses).
        ddc_loss_weight: weight of ``loss_dked_ddc`` (this project's: 1; it only scales the
            DDC's own learning rate).
    """

    requires = ('neck', )

    def __init__(self,
                 student_channels: int = 256,
                 teacher_channels: int = 256,
                 strides: Sequence[float] = (8, 16, 32, 64, 128),
                 num_orientations: int = 8,
                 groups: Optional[int] = None,
                 sigma_ratio: float = 0.25,
                 loss_weight: float = 1.0,
                 ddc_loss_weight: float = 1.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.student_channels, self.teacher_channels = student_channels, teacher_channels
        self.strides, self.sigma_ratio, self.loss_weight = tuple(strides), sigma_ratio, loss_weight
        self.ddc_loss_weight = ddc_loss_weight
        self.adapter = (nn.Conv2d(student_channels, teacher_channels, 1)
                        if student_channels != teacher_channels else nn.Identity())
        self.ddc = DynamicDirectionalConv(teacher_channels, num_orientations, groups)

    def gt_boxes(self, batch: DistillBatch, device: torch.device) -> List[Tensor]:
        """Every sample's GT boxes as (n, 5) rotated boxes."""
        return [rotated_box_tensor(sample.gt_instances.bboxes).to(device).float()
                for sample in batch.data_samples]

    def masks(self, boxes: Sequence[Tensor], size: Tuple[int, int], stride: float) -> Tensor:
        """``G`` of one level, (B, 1, H, W)."""
        return torch.stack([oriented_gaussian_mask(b, size, stride, self.sigma_ratio)
                            for b in boxes]).unsqueeze(1)

    def axis_targets(self, boxes: Sequence[Tensor], size: Tuple[int, int],
                     stride: float) -> Tensor:
        """The DDC's target over its kernel axes on one level, (B, H, W, K / 2)."""
        angles = torch.stack([dominant_box_angle(b, size, stride, self.sigma_ratio)
                              for b in boxes])
        return axis_target(angles, self.ddc.num_orientations // 2)

    def forward(self, student: Dict[str, object], teacher: Dict[str, object],
                batch: DistillBatch) -> Dict[str, Tensor]:
        s_levels, t_levels = paired_levels(student, teacher, 'neck', len(self.strides))
        boxes = self.gt_boxes(batch, t_levels[0].device)
        has_axes = self.ddc.num_orientations >= 4
        bank = self.ddc.bank()
        frozen_bank, frozen_attention = bank.detach(), self.ddc.attention.detach()
        drfd, ddc = t_levels[0].new_zeros(()), t_levels[0].new_zeros(())
        for s, t, stride in zip(s_levels, t_levels, self.strides):
            size = t.shape[-2:]
            mask = self.masks(boxes, size, stride)
            # both terms weigh each location by G^2: the DDC runs on the window where it is > 0
            rows, cols = support_window(mask.pow(2))
            t_responses, s_responses = self.ddc.teacher_student_responses(
                window_with_halo(standardise_channels(t.float()), rows, cols),
                window_with_halo(standardise_channels(self.adapter(s).float()), rows, cols),
                bank, padding=0)
            t_weights = self.ddc.orientation_weights(t_responses)
            with torch.no_grad():
                t_response = self.ddc.mix(t_responses, t_weights, frozen_bank)
            s_response = self.ddc.mix(
                s_responses, self.ddc.orientation_weights(s_responses, frozen_attention),
                frozen_bank)
            mask = mask[..., rows, cols]
            drfd = drfd + relative_response_error(t_response, s_response, mask)
            if has_axes:
                targets = self.axis_targets(boxes, size, stride)[:, rows, cols]
                ddc = ddc + axis_divergence(t_weights, targets, mask)
        return dict(loss_dked_drfd=self.loss_weight * drfd / len(t_levels),
                    loss_dked_ddc=self.ddc_loss_weight * ddc / len(t_levels))


@register_model
class DKEDPredictionLoss(DistillLoss):
    """Prediction distillation of an anchor-based dense head (DKED, part 4).

    Adds ``lambda L_obb(r_T, r_S, r_GT)`` (``loss_dked_obb``) and
    ``(1 - lambda) JOL_cls(c_T, c_S)`` (``loss_dked_cls``) to the student's own losses, whose
    box loss is ``JOL_obb(r_S, r_GT)`` and whose class loss must be weighted ``lambda`` (the
    head's ``loss_cls.loss_weight``, checked here). Per image the anchors are those of the head
    (its anchor generator, box coder and ``allowed_border``) and their assignment to GT boxes is
    the one the student head's assigner made for its own loss (recorded by the distiller as
    ``assignments``: on the CPU the rotated IoUs of one assignment take about 0.4 s at 512 px);
    called without it, the loss assigns with the head's assigner config. ``JOL_obb`` of student and
    teacher is the head's box loss (weight 1)
    of each positive anchor; ``JOL_cls(c_T, c_S)`` is :func:`soft_label_focal` on every anchor
    the head's focal loss uses (positives and negatives). Both sums are divided by the number of
    positive anchors, as the head's own losses are.

    Args:
        head: the student's ``bbox_head`` config (``{{_base_.model.bbox_head}}``).
        train_cfg: the student's ``train_cfg`` (its ``assigner`` and ``allowed_border``).
        lam: lambda (the poster gives no value: 0.5).
        delta: margin of the teacher bound (the poster gives no value: 0).
        gamma: focusing exponent of the soft-label focal loss (focal loss's 2).
    """

    requires = ('cls_scores', 'bbox_preds', 'assignments')

    def __init__(self,
                 head: dict,
                 train_cfg: dict,
                 lam: float = 0.5,
                 delta: float = 0.0,
                 gamma: float = 2.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f'lam must be in [0, 1], got {lam}')
        if 'anchor_generator' not in head:
            raise ValueError('DKEDPredictionLoss needs an anchor-based head (anchor_generator, '
                             f'assigner, bbox_coder); {head.get("type")} has no anchor_generator. '
                             'DKEDCorrelationLoss and DKEDResponseLoss work with any head.')
        own_weight = head.get('loss_cls', {}).get('loss_weight', 1.0)
        if not math.isclose(own_weight, lam):
            raise ValueError(f'DKEDPredictionLoss: L_cls = lambda JOL_cls(c_S, c_GT) + ...: the '
                             f'student head\'s loss_cls.loss_weight is {own_weight}, set it to '
                             f'lam={lam}')
        self.lam, self.delta, self.gamma = lam, delta, gamma
        self.num_classes = head['num_classes']
        self.reg_decoded_bbox = head.get('reg_decoded_bbox', False)
        self.allowed_border = train_cfg.get('allowed_border', -1)
        self.prior_generator = TASK_UTILS.build(head['anchor_generator'])
        self.bbox_coder = TASK_UTILS.build(head['bbox_coder'])
        self.assigner = TASK_UTILS.build(train_cfg['assigner'])
        self.box_loss = MODELS.build(dict(head['loss_bbox'], loss_weight=1.0))

    def box_losses(self, deltas: Tensor, priors, targets) -> Tensor:
        """The head's box loss of each positive anchor (n,), on deltas or decoded boxes."""
        if self.reg_decoded_bbox:
            pred = get_box_tensor(self.bbox_coder.decode(priors, deltas))
            target = get_box_tensor(targets)
        else:
            pred, target = deltas, self.bbox_coder.encode(priors, targets)
        loss = self.box_loss(pred, target, reduction_override='none')
        return loss.sum(dim=-1) if loss.dim() > 1 else loss

    def forward(self, student: Dict[str, object], teacher: Dict[str, object],
                batch: DistillBatch) -> Dict[str, Tensor]:
        s_cls, t_cls = list(student['cls_scores']), list(teacher['cls_scores'])
        device = s_cls[0].device
        sizes = [level.shape[-2:] for level in s_cls]
        flat_priors = cat_boxes(self.prior_generator.grid_priors(sizes, device=device))
        box_dim = self.bbox_coder.encode_size
        s_cls, t_cls = per_anchor(s_cls, self.num_classes), per_anchor(t_cls, self.num_classes)
        s_reg = per_anchor(student['bbox_preds'], box_dim)
        t_reg = per_anchor(teacher['bbox_preds'], box_dim)
        recorded = student.get('assignments')
        if recorded is not None and len(recorded) != len(batch.data_samples):
            raise ValueError(f'DKEDPredictionLoss: {len(recorded)} recorded assignments for '
                             f'{len(batch.data_samples)} images')
        obb, soft, num_pos = s_cls.new_zeros(()), s_cls.new_zeros(()), 0
        for i, sample in enumerate(batch.data_samples):
            meta = sample.metainfo
            valid = torch.cat(self.prior_generator.valid_flags(sizes, meta['pad_shape'], device))
            inside = anchor_inside_flags(flat_priors, valid, meta['img_shape'][:2],
                                         self.allowed_border)
            priors = flat_priors[inside]
            if recorded is None:
                assigned = self.assigner.assign(InstanceData(priors=priors), sample.gt_instances,
                                                sample.get('ignored_instances', None))
            else:
                assigned = recorded[i]
                if assigned.gt_inds.numel() != len(priors):
                    raise ValueError(f'DKEDPredictionLoss: image {i}: the head assigned '
                                     f'{assigned.gt_inds.numel()} anchors, the loss has '
                                     f'{len(priors)} (anchor generator or allowed_border differ)')
            pos = (assigned.gt_inds > 0).nonzero().squeeze(1)
            # the anchors the focal loss uses, as a weight over all anchors: no gather and
            # scatter of the (anchors, classes) maps
            used = torch.zeros_like(inside).masked_scatter_(inside, assigned.gt_inds >= 0)
            soft = soft + (soft_label_focal(s_cls[i], t_cls[i], self.gamma)
                           * used.unsqueeze(1)).sum()
            if pos.numel() == 0:
                continue
            num_pos += pos.numel()
            targets = sample.gt_instances.bboxes[assigned.gt_inds[pos] - 1]
            student_loss = self.box_losses(s_reg[i][inside][pos], priors[pos], targets)
            with torch.no_grad():
                teacher_loss = self.box_losses(t_reg[i][inside][pos].detach(), priors[pos],
                                               targets)
            obb = obb + teacher_bounded(student_loss, teacher_loss, self.delta).sum()
        avg = max(num_pos, 1)
        return dict(loss_dked_obb=self.lam * obb / avg,
                    loss_dked_cls=(1.0 - self.lam) * soft / avg)
