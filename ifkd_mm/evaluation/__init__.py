"""Metrics."""
from .merged_dota_metric import (MergedDOTAMetric, merge_patch_detections, patch_origin,
                                 rotated_voc_ap)

__all__ = ['MergedDOTAMetric', 'merge_patch_detections', 'patch_origin', 'rotated_voc_ap']
