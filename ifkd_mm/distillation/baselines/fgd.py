"""FGD (Yang et al., "Focal and Global Knowledge Distillation for Detectors", CVPR 2022)."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.structures.bbox import BaseBoxes
from mmengine.model import constant_init, kaiming_init
from torch import Tensor, nn

from ...registry import register_model
from ..base import DistillBatch, DistillLoss
from .fitnet import conv_adapters, paired_levels


def spatial_attention(features: Tensor, temp: float) -> Tensor:
    """FGD eq. 5: ``H * W * softmax((1/C sum_c |F_c|) / T)`` over locations, (B, H, W)."""
    b, _, h, w = features.shape
    scores = features.abs().mean(1).reshape(b, -1) / temp
    return (h * w * F.softmax(scores, dim=1)).reshape(b, h, w)


def channel_attention(features: Tensor, temp: float) -> Tensor:
    """FGD eq. 6: ``C * softmax((1/(HW) sum_ij |F_ij|) / T)`` over channels, (B, C)."""
    return features.shape[1] * F.softmax(features.abs().mean((2, 3)) / temp, dim=1)


def box_masks(boxes: Tensor, feat_size: Sequence[int],
              input_size: Sequence[int]) -> Tuple[Tensor, Tensor]:
    """Foreground scale mask and normalised background mask of one image, each (H, W).

    FGD eq. 2-4: a cell belongs to a box when it overlaps the box scaled from input pixels to the
    level (x * W / W_in); inside a box ``S = 1 / (H_r * W_r)``, its footprint in cells, and where
    boxes overlap the smaller box wins (the larger ``S``); the background mask is ``1 / N_bg`` on
    the ``N_bg`` cells outside every box and 0 inside.
    """
    height, width = int(feat_size[0]), int(feat_size[1])
    fg = torch.zeros(height, width, device=boxes.device)
    if len(boxes):
        scaled = boxes.float() * boxes.new_tensor(
            [width / input_size[1], height / input_size[0]] * 2).float()
        x0 = scaled[:, 0].floor().clamp(0, width - 1)
        y0 = scaled[:, 1].floor().clamp(0, height - 1)
        x1 = torch.maximum(scaled[:, 2].ceil().clamp(max=width), x0 + 1)
        y1 = torch.maximum(scaled[:, 3].ceil().clamp(max=height), y0 + 1)
        rows = torch.arange(height, device=boxes.device, dtype=torch.float32)
        cols = torch.arange(width, device=boxes.device, dtype=torch.float32)
        in_rows = (rows >= y0[:, None]) & (rows < y1[:, None])
        in_cols = (cols >= x0[:, None]) & (cols < x1[:, None])
        inside = in_rows[:, :, None] & in_cols[:, None, :]
        scale = 1.0 / ((x1 - x0) * (y1 - y0))
        fg = (inside * scale[:, None, None]).amax(0)
    bg = (fg == 0).float()
    return fg, bg / bg.sum().clamp(min=1)


def horizontal_boxes(sample) -> Tensor:
    """The sample's GT boxes as an (N, 4) x1y1x2y2 tensor (rotated boxes: their outer box)."""
    boxes = sample.gt_instances.bboxes
    if isinstance(boxes, BaseBoxes):
        boxes = (boxes if boxes.box_dim == 4 else boxes.convert_to('hbox')).tensor
    return boxes.detach()


def focal_feature_losses(student: Tensor, teacher: Tensor, fg: Tensor, bg: Tensor,
                         temp: float) -> Tuple[Tensor, Tensor]:
    """FGD eq. 8 without alpha/beta: ``sum M S A^S A^C (F_T - F_S)^2`` for foreground and
    background, attention from the teacher, summed and divided by the batch size."""
    weight = spatial_attention(teacher, temp)[:, None] * \
        channel_attention(teacher, temp)[:, :, None, None]
    sq = (teacher - student).pow(2) * weight
    batch = student.shape[0]
    return (sq * fg[:, None]).sum() / batch, (sq * bg[:, None]).sum() / batch


def attention_loss(student: Tensor, teacher: Tensor, temp: float) -> Tensor:
    """FGD eq. 9 without gamma: L1 between the spatial and the channel attention of teacher and
    student, summed and divided by the batch size."""
    spatial = (spatial_attention(teacher, temp) - spatial_attention(student, temp)).abs().sum()
    channel = (channel_attention(teacher, temp) - channel_attention(student, temp)).abs().sum()
    return (spatial + channel) / student.shape[0]


class GlobalRelation(nn.Module):
    """GcBlock relation of FGD eq. 11:
    ``R(F) = F + W_v2(ReLU(LN(W_v1(sum_j exp(W_k F_j) / sum_m exp(W_k F_m) F_j))))``.

    Context modelling (``W_k``, a 1x1 conv to one channel and a softmax over locations) and the
    channel-add transform (bottleneck ratio 1/2 with LayerNorm), initialised as in GCNet/FGD:
    kaiming (fan-in) ``W_k`` and a zero last conv, so that ``R`` starts as the identity.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = channels // 2
        self.context_conv = nn.Conv2d(channels, 1, kernel_size=1)
        self.transform = nn.Sequential(
            nn.Conv2d(channels, hidden, kernel_size=1), nn.LayerNorm([hidden, 1, 1]),
            nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, kernel_size=1))
        kaiming_init(self.context_conv, mode='fan_in')
        constant_init(self.transform[-1], val=0)

    def context(self, features: Tensor) -> Tensor:
        """Softmax-weighted sum of the features over locations, (B, C, 1, 1)."""
        b, c = features.shape[:2]
        weights = F.softmax(self.context_conv(features).reshape(b, 1, -1), dim=2)
        return torch.bmm(features.reshape(b, c, -1), weights.transpose(1, 2)).reshape(b, c, 1, 1)

    def forward(self, features: Tensor) -> Tensor:
        return features + self.transform(self.context(features))


@register_model
class FGDLoss(DistillLoss):
    """Focal and global distillation on every FPN level (FGD eq. 12, less the detector's loss).

    Per level: ``alpha_fgd * L_fg + beta_fgd * L_bg`` (eq. 8, masks from the GT boxes, spatial
    and channel attention of the teacher), ``gamma_fgd * L_at`` (eq. 9) and
    ``lambda_fgd * sum (R_T(F_T) - R_S(F_S))^2 / B`` (eq. 11), each summed over levels and
    returned as ``loss_fgd_fg``, ``loss_fgd_bg``, ``loss_fgd_at``, ``loss_fgd_global``.
    Every level has its own student and teacher relation blocks (trained by the loss, as in the
    authors' code; the teacher's features stay detached) and, when channels differ, its own 1x1
    align conv applied to the student before every term.

    Defaults are FGD's RetinaNet values (temp 0.5; alpha 1e-3, beta 5e-4, gamma 5e-4, lambda 5e-6:
    the authors' RetinaNet configs, github yzd-v/FGD ``fgd_retina_*``). Other detectors need
    their own values (the authors' Faster R-CNN config: 5e-5, 2.5e-5, 5e-5, 5e-7 on the first
    4 FPN levels).

    Boxes are scaled to each level by the batch's padded input size, which is what the FPN
    levels cover (the authors' code divides by ``img_shape`` instead, which misplaces boxes in
    padded images); a cell is foreground when it overlaps a box, and ``H_r * W_r`` counts those
    cells, so each isolated box's scale mask sums to 1.
    """

    requires = ('neck', )

    def __init__(self,
                 student_channels: int = 256,
                 teacher_channels: int = 256,
                 num_levels: int = 5,
                 temp: float = 0.5,
                 alpha_fgd: float = 0.001,
                 beta_fgd: float = 0.0005,
                 gamma_fgd: float = 0.0005,
                 lambda_fgd: float = 0.000005,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.student_channels = student_channels
        self.teacher_channels = teacher_channels
        self.num_levels = num_levels
        self.temp = temp
        self.alpha_fgd = alpha_fgd
        self.beta_fgd = beta_fgd
        self.gamma_fgd = gamma_fgd
        self.lambda_fgd = lambda_fgd
        self.align = conv_adapters(student_channels, teacher_channels, num_levels, 1) \
            if student_channels != teacher_channels else None
        self.student_relations = nn.ModuleList(
            GlobalRelation(teacher_channels) for _ in range(num_levels))
        self.teacher_relations = nn.ModuleList(
            GlobalRelation(teacher_channels) for _ in range(num_levels))

    def forward(self, student: Dict[str, object], teacher: Dict[str, object],
                batch: DistillBatch) -> Dict[str, Tensor]:
        s_levels, t_levels = paired_levels(student, teacher, 'neck', self.num_levels)
        input_size = batch.inputs.shape[-2:]
        boxes = [horizontal_boxes(sample).to(batch.inputs.device) for sample in batch.data_samples]
        terms: List[Tuple[Tensor, Tensor, Tensor, Tensor]] = []
        for level, (s, t) in enumerate(zip(s_levels, t_levels)):
            if self.align is not None:
                s = self.align[level](s)
            fg, bg = (torch.stack(masks).to(t.dtype)
                      for masks in zip(*(box_masks(b, t.shape[-2:], input_size) for b in boxes)))
            fg_loss, bg_loss = focal_feature_losses(s, t, fg, bg, self.temp)
            relation = (self.teacher_relations[level](t) -
                        self.student_relations[level](s)).pow(2).sum() / s.shape[0]
            terms.append((fg_loss, bg_loss, attention_loss(s, t, self.temp), relation))
        fg_loss, bg_loss, at_loss, relation = (sum(parts) for parts in zip(*terms))
        return dict(loss_fgd_fg=self.alpha_fgd * fg_loss,
                    loss_fgd_bg=self.beta_fgd * bg_loss,
                    loss_fgd_at=self.gamma_fgd * at_loss,
                    loss_fgd_global=self.lambda_fgd * relation)
