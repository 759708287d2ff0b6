"""FitNet (Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015) on FPN levels.

Also holds the small helpers the other baselines share: pairing the levels of student and
teacher, and per-level student -> teacher conv adapters.
"""
from typing import Dict, List, Optional, Tuple

import torch.nn.functional as F
from torch import Tensor, nn

from ...registry import register_model
from ..base import DistillBatch, DistillLoss, as_levels


def paired_levels(student: Dict[str, object], teacher: Dict[str, object], name: str,
                  num_levels: Optional[int] = None) -> Tuple[List[Tensor], List[Tensor]]:
    """The student's levels of output ``name`` and the teacher's (detached), checked to pair up."""
    s_levels = as_levels(student[name])
    t_levels = [level.detach() for level in as_levels(teacher[name])]
    if len(s_levels) != len(t_levels):
        raise ValueError(f'{name}: the student has {len(s_levels)} levels and the teacher '
                         f'{len(t_levels)}')
    if num_levels is not None and len(s_levels) != num_levels:
        raise ValueError(f'{name}: the loss was built for {num_levels} levels but got '
                         f'{len(s_levels)}')
    for index, (s, t) in enumerate(zip(s_levels, t_levels)):
        if s.shape[0] != t.shape[0] or s.shape[-2:] != t.shape[-2:]:
            raise ValueError(f'{name} level {index}: student {tuple(s.shape)} and teacher '
                             f'{tuple(t.shape)} differ in batch or spatial size')
    return s_levels, t_levels


def conv_adapters(student_channels: int, teacher_channels: int, num_levels: int,
                  kernel_size: int) -> nn.ModuleList:
    """One conv per level from student to teacher channels that keeps the spatial size."""
    return nn.ModuleList(
        nn.Conv2d(student_channels, teacher_channels, kernel_size, padding=kernel_size // 2)
        for _ in range(num_levels))


def hint_loss(adapted_student: Tensor, teacher: Tensor) -> Tensor:
    """Mean squared error between the regressed student hint and the teacher feature."""
    return F.mse_loss(adapted_student, teacher)


@register_model
class FitNetLoss(DistillLoss):
    """FitNet hint loss on every FPN level: ``loss_weight * sum_l MSE(r_l(F_S^l), F_T^l)``.

    FitNets eq. 3 is ``1/2 ||u_h(x) - r(v_g(x); W_r)||^2`` with a convolutional regressor ``r``
    whose kernel is ``N_g - N_h + 1`` wide (sec. 2.3): for FPN levels of equal spatial size that
    is a 1x1 conv (linear, as the FPN outputs carry no non-linearity), one per level. The squared
    error is averaged over elements (plain MSE); the paper gives no weight for detection, so
    ``loss_weight`` defaults to 1.

    Args:
        student_channels, teacher_channels: FPN channels of student and teacher.
        num_levels: number of FPN levels (one regressor each).
        loss_weight: weight of the summed per-level hint losses.
    """

    requires = ('neck', )

    def __init__(self,
                 student_channels: int = 256,
                 teacher_channels: int = 256,
                 num_levels: int = 5,
                 loss_weight: float = 1.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.student_channels = student_channels
        self.teacher_channels = teacher_channels
        self.loss_weight = loss_weight
        self.regressors = conv_adapters(student_channels, teacher_channels, num_levels, 1)

    def forward(self, student: Dict[str, object], teacher: Dict[str, object],
                batch: DistillBatch) -> Dict[str, Tensor]:
        s_levels, t_levels = paired_levels(student, teacher, 'neck', len(self.regressors))
        loss = sum(hint_loss(regressor(s), t)
                   for regressor, s, t in zip(self.regressors, s_levels, t_levels))
        return dict(loss_fitnet=self.loss_weight * loss)
