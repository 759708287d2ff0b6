"""Rotated-box distillation on mmrotate detectors: KD-RNet and DKED, as :class:`DistillLoss`
modules of the one :class:`DetectionDistiller`.

Registered (config ``type``, mmdet and mmrotate scopes): ``KDRNetLoss``; ``DKEDCorrelationLoss``,
``DKEDResponseLoss``, ``DKEDPredictionLoss``.
"""
from .dked import (DKEDCorrelationLoss, DKEDPredictionLoss, DKEDResponseLoss,
                   DynamicDirectionalConv, nonlocal_affinity, oriented_gaussian_mask,
                   rotate_kernel, rotated_box_tensor, soft_label_focal, teacher_bounded)
from .kd_rnet import KDRNetLoss, kl_student_teacher, per_anchor, soft_regression

__all__ = [
    'DKEDCorrelationLoss', 'DKEDPredictionLoss', 'DKEDResponseLoss', 'DynamicDirectionalConv',
    'KDRNetLoss', 'kl_student_teacher', 'nonlocal_affinity', 'oriented_gaussian_mask',
    'per_anchor', 'rotate_kernel', 'rotated_box_tensor', 'soft_label_focal', 'soft_regression',
    'teacher_bounded'
]
