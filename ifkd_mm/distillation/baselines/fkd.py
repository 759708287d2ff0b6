"""FKD (Zhang & Ma, "Improve Object Detection with Feature-based Knowledge Distillation: Towards
Accurate and Efficient Detectors", ICLR 2021): attention-guided and non-local distillation.

The paper's text could not be opened here. Its terms are taken from its description (attention
maps from absolute values, masks from both detectors' softmaxed maps, ``L_AT`` between the
attention maps, ``L_AM`` masked feature imitation, ``L_NLD`` between non-local outputs, their
weighted sum), cited as eq. 1-6 in that order, and from the authors' released RetinaNet code
(the mmdet ``SingleStageDetector`` their repository's README points to; its loss lines are quoted
in issue #8 of github ArchipLab-LinfengZhang/Object-Detection-Knowledge-Distillation-ICLR2021),
which gives every normalisation and hyper-parameter here, because it produced the paper's
RetinaNet numbers. Each departure from that code is named where it is made.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.model import constant_init
from torch import Tensor, nn

from ...registry import register_model
from ..base import DistillBatch, DistillLoss
from .fgd import channel_attention, spatial_attention
from .fitnet import conv_adapters, paired_levels


def attention_maps(features: Tensor) -> Tuple[Tensor, Tensor]:
    """FKD eq. 1: the spatial attention ``G^s = 1/C sum_k |F_k|`` (B, H, W) and the channel
    attention ``G^c = 1/(HW) sum_ij |F_ij|`` (B, C); means, as in the authors' code."""
    magnitude = features.abs()
    return magnitude.mean(1), magnitude.mean((2, 3))


def attention_masks(student: Tensor, teacher: Tensor, temp: float) -> Tuple[Tensor, Tensor]:
    """FKD eq. 2: spatial (B, H, W) and channel (B, C) masks from both detectors, detached.

    Each detector's masks are ``H*W*softmax(G^s / T)`` and ``C*softmax(G^c / T)`` (the same maps
    as FGD eq. 5-6, reused from :mod:`.fgd`); the mask is their mean over teacher and student,
    as in the authors' code and MMRazor's FBKD. The paper, as public summaries describe it, adds
    the two detectors' attention maps before one softmax instead; the code's mean is kept
    because ``T`` was tuned with it.
    """
    student, teacher = student.detach(), teacher.detach()
    spatial = (spatial_attention(teacher, temp) + spatial_attention(student, temp)) / 2
    channel = (channel_attention(teacher, temp) + channel_attention(student, temp)) / 2
    return spatial, channel


def attention_masked_loss(adapted_student: Tensor, teacher: Tensor, spatial_mask: Tensor,
                          channel_mask: Tensor) -> Tensor:
    """FKD eq. 4, ``L_AM = (sum_k sum_i sum_j (F_T - f(F_S))^2 M^s_ij M^c_k)^(1/2)``, with the
    sum over the whole batch before the square root (the authors' ``dist2``)."""
    weight = spatial_mask[:, None] * channel_mask[:, :, None, None]
    return torch.linalg.vector_norm((teacher - adapted_student) * weight.sqrt())


def attention_transfer_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """FKD eq. 3, ``L_AT = L2(G^s(F_S), G^s(F_T)) + L2(G^c(F_S), G^c(F_T))``: Euclidean
    distances between the attention maps, each over the whole batch (``torch.dist``)."""
    s_spatial, s_channel = attention_maps(student)
    t_spatial, t_channel = attention_maps(teacher)
    return (torch.linalg.vector_norm(s_spatial - t_spatial) +
            torch.linalg.vector_norm(s_channel - t_channel))


class NonLocalBlock(nn.Module):
    """Dot-product non-local block (Wang et al., "Non-local Neural Networks", CVPR 2018, eq. 1,
    4 and 6) as FKD's relation module:
    ``z_i = x_i + BN(W_z (1/N sum_j theta(x_i)^T phi(x_j) g(x_j)))``.

    ``phi`` and ``g`` are 1x1 convs followed by a ``stride`` x ``stride`` max-pool, so that the
    N key positions are a sub-sampled grid (the authors pool level by level: 8, 4, 2, 2, 2 from
    P3 to P7). The pool rounds up (``ceil_mode``), so a level smaller than ``stride`` or of odd
    size keeps every row and column; the authors' pool rounds down. The BN after ``W_z`` starts
    at scale and shift 0, so the block starts as the identity (as Wang et al. and the authors).
    """

    def __init__(self, channels: int, inner_channels: int, stride: int) -> None:
        super().__init__()
        self.theta = nn.Conv2d(channels, inner_channels, kernel_size=1)
        self.phi = nn.Conv2d(channels, inner_channels, kernel_size=1)
        self.g = nn.Conv2d(channels, inner_channels, kernel_size=1)
        self.pool = nn.MaxPool2d(stride, ceil_mode=True) if stride > 1 else nn.Identity()
        self.out = nn.Sequential(nn.Conv2d(inner_channels, channels, kernel_size=1),
                                 nn.BatchNorm2d(channels))
        constant_init(self.out[1], val=0)

    def relation(self, features: Tensor) -> Tensor:
        """``y_i = 1/N sum_j theta(x_i)^T phi(x_j) g(x_j)`` over the pooled keys, (B, C', H, W)."""
        b, _, h, w = features.shape
        query = self.theta(features).flatten(2)
        key = self.pool(self.phi(features)).flatten(2)
        value = self.pool(self.g(features)).flatten(2)
        affinity = query.transpose(1, 2) @ key / key.shape[-1]
        return (value @ affinity.transpose(1, 2)).reshape(b, -1, h, w)

    def forward(self, features: Tensor) -> Tensor:
        return features + self.out(self.relation(features))


@register_model
class FKDLoss(DistillLoss):
    """Attention-guided and non-local distillation on every FPN level (FKD eq. 6, less the
    detector's loss): ``am_weight * sum_l L_AM``, ``at_weight * sum_l L_AT`` and
    ``nld_weight * sum_l L_NLD``, returned as ``loss_fkd_am``, ``loss_fkd_at``,
    ``loss_fkd_nld``.

    ``L_AM`` (eq. 4) compares the teacher with the student through a 1x1 adapter ``f`` per
    level under the masks of eq. 2; ``L_AT`` (eq. 3) compares the attention maps of eq. 1
    directly. The authors' code replaces ``L_AT`` by distances between the mean-pooled features
    (without absolute values) through a trainable linear layer and a 3x3 conv; this module keeps
    the paper's ``L_AT``, which has no trainable part to fit a fixed batch, under the code's
    weight. Without those adapters the student's maps must reach the teacher's scale: on
    P6-P7, where the project's trained demo teacher's features are several times its student's,
    ``L_AT`` is the largest term (at the first iteration the code's linear-layer term is as
    large).

    ``L_NLD`` (eq. 5) is the Euclidean distance over the batch between the teacher's relation
    and the student's, ``||r_T - g(NL_S(F_S))||_2`` with a non-local block ``NL_S`` and a 1x1
    adapter ``g`` per level, as in the authors' code. The authors also put a non-local block on
    the teacher; it starts as the identity and its only training signal is this loss, which
    moves the teacher's side toward the student's (on fixed unrelated features the student's
    side trained alone left 73-79 % of the teacher's own norm, a trained teacher-side block
    38-43 %: tests/test_baseline_fkd.py). Here the teacher's relation is that block at its
    start, ``r_T = F_T``, and nothing on the teacher's side is trained. The block's BatchNorm
    needs more than one value per channel in training: batch x H x W > 1 on every level (one
    image of at most 128 px has a 1 x 1 P7).

    Defaults are the authors' released RetinaNet values: ``T = 0.1``, weights ``7e-5 * 6``
    (``L_AM``), ``4e-3 * 6`` (``L_AT``), ``7e-5 * 6`` (``L_NLD``); the relation blocks use
    ``C / 4`` inner channels and pool strides 8 and 4 on P3, P4, ``C / 2`` and 2 on P5-P7.
    Their two-stage code uses ``T = 0.5`` and weights without the factor 6 (MMRazor's FBKD
    defaults). The paper's own table of hyper-parameters could not be read here; its
    ``alpha, beta, gamma`` are named after the terms they weigh instead. At ``T = 0.1`` the masks
    keep few locations and channels (on the FPN of this project's trained demo teacher, 128
    channels at 256 px: about 6 of 1024 locations on P3, 1 to 3 channels), so ``L_AM`` imitates
    little of each level. Every term is a norm, not a mean: its value grows with the image size
    and the teacher's feature scale, while its gradient with respect to the normed tensor has
    unit length.

    Both detectors need the same FPN channels: the masks and ``L_AT`` compare channel by
    channel.

    Args:
        student_channels, teacher_channels: FPN channels of student and teacher (equal).
        num_levels: number of FPN levels (one adapter and relation block each).
        temp: softmax temperature ``T`` of the masks.
        am_weight, at_weight, nld_weight: weights of ``L_AM``, ``L_AT`` and ``L_NLD``.
        relation_reductions: per level, channels / inner channels of the relation block.
        relation_strides: per level, the max-pool stride of the relation block's keys.
    """

    requires = ('neck', )

    def __init__(self,
                 student_channels: int = 256,
                 teacher_channels: int = 256,
                 num_levels: int = 5,
                 temp: float = 0.1,
                 am_weight: float = 7e-5 * 6,
                 at_weight: float = 4e-3 * 6,
                 nld_weight: float = 7e-5 * 6,
                 relation_reductions: Sequence[int] = (4, 4, 2, 2, 2),
                 relation_strides: Sequence[int] = (8, 4, 2, 2, 2),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if student_channels != teacher_channels:
            raise ValueError(f'FKD compares attention channel by channel: student channels '
                             f'{student_channels} and teacher channels {teacher_channels} differ')
        if not len(relation_reductions) == len(relation_strides) == num_levels:
            raise ValueError(f'relation_reductions {tuple(relation_reductions)} and '
                             f'relation_strides {tuple(relation_strides)} need one value for '
                             f'each of the {num_levels} levels')
        self.student_channels = student_channels
        self.teacher_channels = teacher_channels
        self.num_levels = num_levels
        self.temp = temp
        self.am_weight = am_weight
        self.at_weight = at_weight
        self.nld_weight = nld_weight
        self.adapters = conv_adapters(student_channels, teacher_channels, num_levels, 1)
        self.student_relations = nn.ModuleList(
            NonLocalBlock(student_channels, max(1, student_channels // reduction), stride)
            for reduction, stride in zip(relation_reductions, relation_strides))
        self.relation_adapters = conv_adapters(student_channels, teacher_channels, num_levels, 1)

    def forward(self, student: Dict[str, object], teacher: Dict[str, object],
                batch: DistillBatch) -> Dict[str, Tensor]:
        s_levels, t_levels = paired_levels(student, teacher, 'neck', self.num_levels)
        terms: List[Tuple[Tensor, Tensor, Tensor]] = []
        for level, (s, t) in enumerate(zip(s_levels, t_levels)):
            spatial_mask, channel_mask = attention_masks(s, t, self.temp)
            masked = attention_masked_loss(self.adapters[level](s), t, spatial_mask, channel_mask)
            relation = self.relation_adapters[level](self.student_relations[level](s))
            terms.append((masked, attention_transfer_loss(s, t),
                          torch.linalg.vector_norm(t - relation)))
        am_loss, at_loss, nld_loss = (sum(parts) for parts in zip(*terms))
        return dict(loss_fkd_am=self.am_weight * am_loss,
                    loss_fkd_at=self.at_weight * at_loss,
                    loss_fkd_nld=self.nld_weight * nld_loss)
