"""KD-RNet (Xiao and Zhang, "Knowledge Distillation for Oriented Object Detection on Aerial
Images"): class and soft-regression distillation of a rotated RetinaNet.

Eq. 1: ``L = l1 L_cls + l2 L_reg + l3 L_KD-cls + l4 L_KD-reg``. ``L_cls`` (focal loss, gamma 2,
alpha 0.25) and ``L_reg`` (KLD) are the student head's own losses, weighted by their
``loss_weight`` (l1, l2); :class:`KDRNetLoss` adds ``l3 L_KD-cls`` and ``l4 L_KD-reg``.

Interpretations (the paper defines neither further; recorded in README, "Rotated-box distillation"):

* Eq. 2, ``-sum_x p_s(x) log p_t(x) + sum_x p_s(x) log p_s(x)`` = ``KL(p_s || p_t)`` (the
  student's distribution first, as printed), per anchor. The head is a sigmoid (focal) head with
  no background logit; the anchor's "class distribution" is ``softmax(z / T)`` over its K class
  logits (``distribution='softmax'``, default), or K independent Bernoulli distributions
  ``sigmoid(z / T)`` (``'sigmoid'``, which keeps the background evidence). T = 8.
* Eq. 3 is smooth-L1 between the teacher's and the student's raw regression outputs (the
  (dx, dy, dw, dh, dtheta) deltas of each anchor). "Temperature 10 for the regression branch"
  is read as softening both outputs the way logits are softened: eq. 3 on ``x / T``. Both terms
  are multiplied by ``T^2`` (Hinton et al.'s gradient-scale correction, which the paper's eq. 2
  cites via [14]); for eq. 3 this makes the loss Huber with threshold T:
  ``1/2 d^2`` for ``|d| <= T``, ``T |d| - T^2 / 2`` beyond. ``temperature_squared=False``
  gives the equations literally (then ~1/T^2 smaller).
* Both terms cover every anchor of every level (the paper distils "the predicts from the
  teacher's detection head"), averaged over anchors; the regression term sums the 5 deltas.
"""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ...registry import register_model
from ..base import DistillBatch, DistillLoss

DISTRIBUTIONS = ('softmax', 'sigmoid')


def per_anchor(levels: Sequence[Tensor], dim: int) -> Tensor:
    """Dense head outputs ``(B, A * dim, H, W)`` per level as ``(B, sum_l H W A, dim)``.

    The order is mmdet's (level, y, x, anchor), as in ``AnchorHead.loss_by_feat``.
    """
    return torch.cat([level.permute(0, 2, 3, 1).reshape(level.shape[0], -1, dim)
                      for level in levels], dim=1)


def kl_student_teacher(student_logits: Tensor, teacher_logits: Tensor, temperature: float,
                       distribution: str = 'softmax') -> Tensor:
    """Eq. 2 per anchor: ``sum_x p_s(x) (log p_s(x) - log p_t(x))`` = ``KL(p_s || p_t)``.

    ``p = softmax(z / T)`` over the last dim, or per class the Bernoulli ``(sigmoid(z / T),
    1 - sigmoid(z / T))`` summed over classes (``distribution='sigmoid'``). Returns ``(...,)``.
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f'distribution must be one of {DISTRIBUTIONS}, got {distribution!r}')
    zs, zt = student_logits.float() / temperature, teacher_logits.float() / temperature
    if distribution == 'softmax':
        log_ps, log_pt = F.log_softmax(zs, dim=-1), F.log_softmax(zt, dim=-1)
        return (log_ps.exp() * (log_ps - log_pt)).sum(dim=-1)
    # log sigmoid(z) and log(1 - sigmoid(z)) = log sigmoid(-z), numerically stable
    pos = F.logsigmoid(zs).exp() * (F.logsigmoid(zs) - F.logsigmoid(zt))
    neg = F.logsigmoid(-zs).exp() * (F.logsigmoid(-zs) - F.logsigmoid(-zt))
    return (pos + neg).sum(dim=-1)


def soft_regression(student_deltas: Tensor, teacher_deltas: Tensor, temperature: float) -> Tensor:
    """Eq. 3 elementwise on the softened outputs: ``smoothL1(x_s / T - x_t / T)`` (beta 1)."""
    return F.smooth_l1_loss(student_deltas.float() / temperature,
                            teacher_deltas.float() / temperature, beta=1.0, reduction='none')


@register_model
class KDRNetLoss(DistillLoss):
    """KD-RNet's distillation terms: ``l3 L_KD-cls`` (eq. 2) and ``l4 L_KD-reg`` (eq. 3).

    Reads the dense head's per-level ``cls_scores`` (``(B, A K, H, W)`` sigmoid logits) and
    ``bbox_preds`` (``(B, A box_dim, H, W)`` deltas) of student and teacher.

    Args:
        cls_weight: lambda_3 (the paper gives no value: 1).
        reg_weight: lambda_4 (the paper gives no value: 1).
        cls_temperature: T of eq. 2 (section III-A: 8).
        reg_temperature: T of eq. 3 (section III-A: 10).
        distribution: ``'softmax'`` over the K class logits of an anchor, or ``'sigmoid'``.
        temperature_squared: multiply both terms by their ``T^2``.
        box_dim: size of one anchor's regression output (5 for rotated boxes).
    """

    requires = ('cls_scores', 'bbox_preds')

    def __init__(self,
                 cls_weight: float = 1.0,
                 reg_weight: float = 1.0,
                 cls_temperature: float = 8.0,
                 reg_temperature: float = 10.0,
                 distribution: str = 'softmax',
                 temperature_squared: bool = True,
                 box_dim: int = 5,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f'distribution must be one of {DISTRIBUTIONS}, got {distribution!r}')
        if cls_temperature <= 0 or reg_temperature <= 0:
            raise ValueError('temperatures must be positive')
        self.cls_weight, self.reg_weight = cls_weight, reg_weight
        self.cls_temperature, self.reg_temperature = cls_temperature, reg_temperature
        self.distribution = distribution
        self.temperature_squared = temperature_squared
        self.box_dim = box_dim

    def forward(self, student: Dict[str, object], teacher: Dict[str, object],
                batch: DistillBatch) -> Dict[str, Tensor]:
        s_cls, t_cls = list(student['cls_scores']), list(teacher['cls_scores'])
        s_reg, t_reg = list(student['bbox_preds']), list(teacher['bbox_preds'])
        num_classes = self.num_classes(s_cls, s_reg)
        if num_classes != self.num_classes(t_cls, t_reg):
            raise ValueError('KDRNetLoss: student and teacher heads differ in classes/anchors')
        kl = kl_student_teacher(per_anchor(s_cls, num_classes),
                                per_anchor(t_cls, num_classes).detach(), self.cls_temperature,
                                self.distribution)
        reg = soft_regression(per_anchor(s_reg, self.box_dim),
                              per_anchor(t_reg, self.box_dim).detach(), self.reg_temperature)
        cls_scale = self.cls_temperature ** 2 if self.temperature_squared else 1.0
        reg_scale = self.reg_temperature ** 2 if self.temperature_squared else 1.0
        return dict(loss_kd_cls=self.cls_weight * cls_scale * kl.mean(),
                    loss_kd_reg=self.reg_weight * reg_scale * reg.sum(dim=-1).mean())

    def num_classes(self, cls_scores: List[Tensor], bbox_preds: List[Tensor]) -> int:
        """K from the channels of the first level: ``A K`` class and ``A box_dim`` box outputs."""
        if len(cls_scores) != len(bbox_preds) or not cls_scores:
            raise ValueError('KDRNetLoss needs one cls_score and one bbox_pred per level')
        anchors, rest = divmod(bbox_preds[0].shape[1], self.box_dim)
        if rest or cls_scores[0].shape[1] % anchors:
            raise ValueError(f'bbox_preds have {bbox_preds[0].shape[1]} channels: not a multiple '
                             f'of box_dim={self.box_dim} matching the class channels')
        return cls_scores[0].shape[1] // anchors
