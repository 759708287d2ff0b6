"""The distiller and the distillation loss modules."""
from .base import RECORDABLE, DistillBatch, DistillLoss, as_levels
from .distiller import DetectionDistiller, build_teacher, check_compatible
from . import baselines, ifkd, rotated  # noqa: F401,E402  (registers the loss modules)

__all__ = [
    'RECORDABLE', 'DistillBatch', 'DistillLoss', 'as_levels', 'DetectionDistiller',
    'build_teacher', 'check_compatible'
]
