"""Rotated-box distillation on mmrotate detectors: KD-RNet and DKED, as :class:`DistillLoss`
modules of the one :class:`DetectionDistiller`.

Registered (config ``type``, mmdet and mmrotate scopes): ``KDRNetLoss``; ``DKEDCorrelationLoss``,
``DKEDResponseLoss``, ``DKEDPredictionLoss``.
"""
from .dked import (DKEDCorrelationLoss, DKEDPredictionLoss, DKEDResponseLoss,
                   DynamicDirectionalConv, axis_divergence, axis_target, box_gaussians,
                   dominant_box_angle, nonlocal_affinity, oriented_gaussian_mask,
                   relative_response_error, rotate_kernel, rotated_box_tensor,
                   soft_label_focal, standardise_channels, teacher_bounded)
from .kd_rnet import (KDRNetLoss, kl_student_teacher, per_anchor, soft_regression,
                      teacher_confident)

__all__ = [
    'DKEDCorrelationLoss', 'DKEDPredictionLoss', 'DKEDResponseLoss', 'DynamicDirectionalConv',
    'KDRNetLoss', 'axis_divergence', 'axis_target', 'box_gaussians', 'dominant_box_angle',
    'kl_student_teacher', 'nonlocal_affinity', 'oriented_gaussian_mask', 'per_anchor',
    'relative_response_error', 'rotate_kernel', 'rotated_box_tensor', 'soft_label_focal',
    'soft_regression', 'standardise_channels', 'teacher_bounded', 'teacher_confident'
]
