"""FRS (Du et al., "Distilling Object Detectors with Feature Richness", NeurIPS 2021)."""
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from torch import Tensor

from ...registry import register_model
from ..base import DistillBatch, DistillLoss
from .fitnet import conv_adapters, paired_levels


def richness_mask(cls_scores: Tensor) -> Tensor:
    """Feature richness score: per location, the max over anchors and classes of the sigmoid
    class scores, (B, H, W); detached."""
    return cls_scores.detach().float().sigmoid().amax(1)


def masked_feature_loss(adapted_student: Tensor, teacher: Tensor, mask: Tensor) -> Tensor:
    """``sum_ij S_ij sum_c (F_T - adapt(F_S))^2 / sum_ij S_ij`` over the batch."""
    return ((teacher - adapted_student).pow(2) * mask[:, None]).sum() / mask.sum()


def masked_soft_bce(student_logits: Tensor, teacher_scores: Tensor, mask: Tensor) -> Tensor:
    """``sum_ij S_ij sum_k BCE(sigmoid(y_S), p_T) / sum_ij S_ij`` over the batch, ``p_T`` the
    teacher's sigmoid scores: one BCE call weighted by the (constant) mask and summed."""
    return F.binary_cross_entropy_with_logits(
        student_logits, teacher_scores, weight=mask[:, None], reduction='sum') / mask.sum()


def masked_cls_loss(student_logits: Tensor, teacher_logits: Tensor, mask: Tensor) -> Tensor:
    """``sum_ij S_ij sum_k BCE(sigmoid(y_S), sigmoid(y_T)) / sum_ij S_ij`` over the batch."""
    return masked_soft_bce(student_logits, teacher_logits.sigmoid(), mask)


def warmup_factor(warmup_iters: int) -> float:
    """``min(1, iter / warmup_iters)`` with the runner's current iteration (1 outside a run)."""
    step = MessageHub.get_current_instance().get_info('iter')
    if warmup_iters <= 0 or step is None:
        return 1.0
    return min(1.0, step / warmup_iters)


@register_model
class FRSLoss(DistillLoss):
    """Feature-richness-score distillation on every FPN level and dense-head class output.

    The mask ``S`` of level l is the teacher's richness score (:func:`richness_mask`);
    ``loss_frs_feat = feat_weight * sum_l masked_feature_loss`` between the teacher's FPN level
    and the student's through a 3x3 conv adapter (one per level), and
    ``loss_frs_cls = cls_weight * sum_l masked_cls_loss`` between the class logits (BCE of the
    student's sigmoid scores against the teacher's; at equal logits it is the teacher's masked
    entropy, its minimum, not 0). Both ramp up linearly over the first ``warmup_iters``
    iterations.

    Defaults are the authors' RetinaNet values (github duzhixing/FRS,
    ``config/distill_frs/resnet50_resnet101_retinanet_frs.py``: feature weight 0.005, class
    weight 0.02, warm-up 500 iterations, 3x3 adapters without activation). For Faster R-CNN the
    dense head is the RPN (objectness logits) and the authors use feat_weight=0.002,
    cls_weight=0.1 (``resnet50_resnet101_faster_rcnn_frs.py``).

    Args:
        student_channels, teacher_channels: FPN channels of student and teacher.
        num_levels: number of FPN levels (one adapter each).
        feat_weight, cls_weight: weights of the feature and class terms.
        warmup_iters: linear warm-up length in iterations (0: none).
    """

    requires = ('neck', 'cls_scores')

    def __init__(self,
                 student_channels: int = 256,
                 teacher_channels: int = 256,
                 num_levels: int = 5,
                 feat_weight: float = 0.005,
                 cls_weight: float = 0.02,
                 warmup_iters: int = 500,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.student_channels = student_channels
        self.teacher_channels = teacher_channels
        self.feat_weight = feat_weight
        self.cls_weight = cls_weight
        self.warmup_iters = warmup_iters
        self.adapters = conv_adapters(student_channels, teacher_channels, num_levels, 3)

    def forward(self, student: Dict[str, object], teacher: Dict[str, object],
                batch: DistillBatch) -> Dict[str, Tensor]:
        s_feats, t_feats = paired_levels(student, teacher, 'neck', len(self.adapters))
        s_cls, t_cls = paired_levels(student, teacher, 'cls_scores', len(self.adapters))
        feat_loss, cls_loss = 0, 0
        for adapter, s_feat, t_feat, s_score, t_score in zip(self.adapters, s_feats, t_feats,
                                                             s_cls, t_cls):
            if s_score.shape != t_score.shape:
                raise ValueError(f'cls_scores: student {tuple(s_score.shape)} and teacher '
                                 f'{tuple(t_score.shape)} differ (anchors or classes)')
            # the teacher's sigmoid scores once (at least float32), for richness_mask and as
            # the class term's target
            t_prob = t_score.to(torch.promote_types(t_score.dtype, torch.float32)).sigmoid()
            mask = t_prob.amax(1).to(t_feat.dtype)
            if mask.shape[-2:] != t_feat.shape[-2:]:
                raise ValueError(f'cls_scores {tuple(mask.shape[-2:])} and neck '
                                 f'{tuple(t_feat.shape[-2:])} levels differ in size')
            feat_loss = feat_loss + masked_feature_loss(adapter(s_feat), t_feat, mask)
            cls_loss = cls_loss + masked_soft_bce(s_score, t_prob.to(t_score.dtype), mask)
        ramp = warmup_factor(self.warmup_iters)
        return dict(loss_frs_feat=ramp * self.feat_weight * feat_loss,
                    loss_frs_cls=ramp * self.cls_weight * cls_loss)
