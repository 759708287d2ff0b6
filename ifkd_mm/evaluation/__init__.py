"""Metrics."""
from .dota_metrics import (InProcessDOTAMetric, MergedDOTAMetric, merge_patch_detections,
                           patch_origin, rotated_voc_ap)
from .quad_iou import quad_iou

__all__ = [
    'InProcessDOTAMetric', 'MergedDOTAMetric', 'merge_patch_detections', 'patch_origin',
    'quad_iou', 'rotated_voc_ap'
]
