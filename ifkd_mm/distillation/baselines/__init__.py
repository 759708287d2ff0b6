"""The distillation methods IFKD is compared with (IFKD Table 3), as :class:`DistillLoss` modules.

Registered (config ``type``): ``FitNetLoss``, ``ATLoss``, ``FGDLoss``, ``FRSLoss``. FKD, InsDist
and ARSD from the same table are not implemented: their papers' formulas and hyper-parameters
could not be checked here, and the methods are not approximated.
"""
from .at import ATLoss, at_loss, attention_map
from .fgd import (FGDLoss, GlobalRelation, attention_loss, box_masks, channel_attention,
                  focal_feature_losses, horizontal_boxes, spatial_attention)
from .fitnet import FitNetLoss, conv_adapters, hint_loss, paired_levels
from .frs import FRSLoss, masked_cls_loss, masked_feature_loss, richness_mask, warmup_factor

__all__ = [
    'ATLoss', 'FGDLoss', 'FitNetLoss', 'FRSLoss', 'GlobalRelation', 'at_loss', 'attention_loss',
    'attention_map', 'box_masks', 'channel_attention', 'conv_adapters', 'focal_feature_losses',
    'hint_loss', 'horizontal_boxes', 'masked_cls_loss', 'masked_feature_loss', 'paired_levels',
    'richness_mask', 'spatial_attention', 'warmup_factor'
]
