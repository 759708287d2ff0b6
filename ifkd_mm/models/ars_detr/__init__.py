"""ARS-DETR: the rotated DETR that MutDet pre-trains (mmrotate 1.x, on mmdet 3.x's DINO)."""
from .angle_coder import ARCSLCoder, aspect_ratio, aspect_ratio_weight, turned_rectangle_iou
from .attention import (RotatedMultiScaleDeformableAttention, attention_frame,
                        rotated_sampling_locations)
from .denoising import RotatedCdnQueryGenerator
from .detector import ARSDETR
from .head import ARSDETRHead
from .match_cost import AngleSoftBCECost
from .transformer import ARSDETRTransformerDecoder, ARSDETRTransformerEncoder

__all__ = [
    'ARCSLCoder', 'ARSDETR', 'ARSDETRHead', 'ARSDETRTransformerDecoder',
    'ARSDETRTransformerEncoder', 'AngleSoftBCECost', 'RotatedCdnQueryGenerator',
    'RotatedMultiScaleDeformableAttention', 'aspect_ratio', 'aspect_ratio_weight',
    'attention_frame', 'rotated_sampling_locations', 'turned_rectangle_iou'
]
