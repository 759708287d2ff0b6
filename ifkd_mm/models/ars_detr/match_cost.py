"""ARS-DETR's angle matching cost."""
from typing import Optional

import torch.nn.functional as F
from mmdet.models.task_modules.assigners.match_cost import BaseMatchCost
from mmengine.structures import InstanceData
from mmrotate.registry import TASK_UTILS
from torch import Tensor


@TASK_UTILS.register_module()
class AngleSoftBCECost(BaseMatchCost):
    """Soft-label binary cross-entropy between angle logits and AR-CSL labels, times 2k/(k+1).

    ``cost[i, j] = w_j * mean_b BCE(x_ib, t_jb)`` for prediction i (``pred_instances.angle_logits``
    (num_queries, bins)) and ground truth j (``gt_instances.angle_targets`` (num_gt, bins) and
    ``gt_instances.angle_weights`` (num_gt,)), the per-bin mean of the angle loss. With
    ``BCE(x, t) = softplus(x) - x t`` it is one matrix product.
    """

    def __call__(self, pred_instances: InstanceData, gt_instances: InstanceData,
                 img_meta: Optional[dict] = None, **kwargs) -> Tensor:
        logits = pred_instances.angle_logits.float()
        targets = gt_instances.angle_targets.float()
        bins = logits.shape[-1]
        cost = F.softplus(logits).mean(-1, keepdim=True) - logits @ targets.T / bins
        return cost * gt_instances.angle_weights[None, :] * self.weight
