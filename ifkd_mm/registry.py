"""Registries of ifkd_mm.

ifkd_mm has no registries of its own: detection modules register in mmdet's registries, rotated
detection modules in mmrotate's, classification modules in mmpretrain's, so that configs find them
through ``custom_imports=dict(imports=['ifkd_mm'])`` under the usual ``default_scope``.
"""
from mmdet.registry import DATASETS, HOOKS, METRICS, MODELS, TRANSFORMS
from mmpretrain.registry import DATASETS as CLS_DATASETS
from mmpretrain.registry import METRICS as CLS_METRICS
from mmpretrain.registry import MODELS as CLS_MODELS
from mmpretrain.registry import TRANSFORMS as CLS_TRANSFORMS
from mmrotate.registry import DATASETS as ROTATED_DATASETS
from mmrotate.registry import METRICS as ROTATED_METRICS
from mmrotate.registry import MODELS as ROTATED_MODELS
from mmrotate.registry import TRANSFORMS as ROTATED_TRANSFORMS

__all__ = [
    'DATASETS', 'HOOKS', 'METRICS', 'MODELS', 'TRANSFORMS', 'ROTATED_DATASETS', 'ROTATED_METRICS',
    'ROTATED_MODELS', 'ROTATED_TRANSFORMS', 'CLS_DATASETS', 'CLS_METRICS', 'CLS_MODELS',
    'CLS_TRANSFORMS', 'register_model'
]


def register_model(cls: type) -> type:
    """Register a model class in both detection registries (mmdet and mmrotate scopes)."""
    MODELS.register_module(module=cls)
    ROTATED_MODELS.register_module(module=cls)
    return cls
