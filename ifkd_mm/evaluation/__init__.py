"""Metrics."""
from .dota_metrics import (InProcessDOTAMetric, MergedDOTAMetric, merge_patch_detections,
                           patch_origin, rotated_voc_ap)

__all__ = [
    'InProcessDOTAMetric', 'MergedDOTAMetric', 'merge_patch_detections', 'patch_origin',
    'rotated_voc_ap'
]
