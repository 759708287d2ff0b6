"""The distillation methods IFKD is compared with (IFKD Table 3), as :class:`DistillLoss` modules.

Registered (config ``type``): ``FitNetLoss``, ``ATLoss``, ``FGDLoss``, ``FRSLoss``,
``InsDistLoss`` (InsDist's paper text could not be read: the module follows its abstract and the
authors' code and names every interpretation), ``ARSDLoss`` (likewise: its abstract, overview
figure and the authors' code), ``FKDLoss`` (likewise: the paper's description and the authors'
released RetinaNet code and hyper-parameters; every interpretation is named in the module).
"""
from .arsd import (ARSDLoss, area_weights, centerness, core_feature_masks, imitation_loss,
                   level_normalised_loss, strict_selection, target_levels)
from .at import ATLoss, at_loss, attention_map
from .fgd import (FGDLoss, GlobalRelation, attention_loss, box_masks, channel_attention,
                  focal_feature_losses, horizontal_boxes, spatial_attention)
from .fitnet import FitNetLoss, conv_adapters, hint_loss, paired_levels
from .fkd import (FKDLoss, NonLocalBlock, attention_maps, attention_masked_loss,
                  attention_masks, attention_transfer_loss)
from .frs import FRSLoss, masked_cls_loss, masked_feature_loss, richness_mask, warmup_factor
from .insdist import InsDistLoss

__all__ = [
    'ARSDLoss', 'area_weights', 'centerness', 'core_feature_masks', 'imitation_loss',
    'level_normalised_loss', 'strict_selection', 'target_levels',
    'ATLoss', 'FGDLoss', 'FitNetLoss', 'FRSLoss', 'GlobalRelation', 'at_loss', 'attention_loss',
    'attention_map', 'box_masks', 'channel_attention', 'conv_adapters', 'focal_feature_losses',
    'hint_loss', 'horizontal_boxes', 'masked_cls_loss', 'masked_feature_loss', 'paired_levels',
    'richness_mask', 'spatial_attention', 'warmup_factor', 'InsDistLoss',
    'FKDLoss', 'NonLocalBlock', 'attention_maps', 'attention_masked_loss', 'attention_masks',
    'attention_transfer_loss'
]
