"""DINO's contrastive denoising queries extended with noisy angles (ARS-DETR)."""
import math
from typing import List, Sequence, Tuple

import torch
from mmdet.models.layers import CdnQueryGenerator
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from torch import Tensor


def wrap_le90(angles: Tensor) -> Tensor:
    """Angles (radians) wrapped into le90's [-pi/2, pi/2)."""
    return torch.remainder(angles + math.pi / 2, math.pi) - math.pi / 2


def rotated_gt_as_hbox(rboxes: Tensor, img_shape: Sequence[int]) -> Tuple[Tensor, Tensor]:
    """Split le90 (cx, cy, w, h, t) pixel boxes into normalised (cx, cy, w, h) and angles.

    ARS-DETR regresses the box in its own frame as if it were horizontal: x and w are divided
    by the image width, y and h by its height.
    """
    img_h, img_w = img_shape[:2]
    factor = rboxes.new_tensor([img_w, img_h, img_w, img_h])
    return rboxes[:, :4] / factor, rboxes[:, 4]


class RotatedCdnQueryGenerator(CdnQueryGenerator):
    """CDN queries (label, box) of mmdet's DINO plus each query's noisy angle.

    Labels and the horizontal (cx, cy, w, h) part are noised by mmdet's generator; the angle of a
    positive query moves by ``u * theta * angle_noise_scale`` with u uniform in (-1, 1), that of a
    negative one with |u| in [1, 2), then is wrapped into le90. The noise is relative to the angle,
    as in ARS-DETR's code (a box at angle 0 is never turned); the paper gives no formula.

    Args:
        angle_noise_scale: relative angle noise (ARS-DETR: 0.02).
        Others: see mmdet's ``CdnQueryGenerator``.
    """

    def __init__(self, *args, angle_noise_scale: float = 0.02, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if angle_noise_scale < 0:
            raise ValueError(f'angle_noise_scale must be >= 0, got {angle_noise_scale}')
        self.angle_noise_scale = angle_noise_scale

    def __call__(self, batch_data_samples: SampleList) -> tuple:
        """Denoising queries of a batch with rotated ground truth.

        Returns:
            (label queries (bs, n_dn, dim), box queries (bs, n_dn, 4) as inverse-sigmoid of
            normalised (cx, cy, w, h), angles (bs, n_dn), attention mask (n_dn + n_match,) * 2,
            dn_meta) with ``n_dn = 2 * num_groups * max_num_target`` as in mmdet.
        """
        boxes, angles, labels = [], [], []
        for sample in batch_data_samples:
            hbox, angle = rotated_gt_as_hbox(sample.gt_instances.bboxes.tensor, sample.img_shape)
            boxes.append(hbox)
            angles.append(angle)
            labels.append(sample.gt_instances.labels)
        num_targets = [len(b) for b in boxes]
        max_num_target = max(num_targets)
        num_groups = self.get_num_groups(max_num_target)
        gt_labels, gt_boxes, gt_angles = torch.cat(labels), torch.cat(boxes), torch.cat(angles)

        label_query = self.generate_dn_label_query(gt_labels, num_groups)
        box_query = self.generate_dn_bbox_query(bbox_cxcywh_to_xyxy(gt_boxes), num_groups)
        angle_query = self.generate_dn_angles(gt_angles, num_groups)
        label_query, box_query, angle_query = self.collate_per_target(
            [label_query, box_query, angle_query], num_targets, num_groups)
        attn_mask = self.generate_dn_mask(max_num_target, num_groups, device=gt_boxes.device)
        dn_meta = dict(num_denoising_queries=int(max_num_target * 2 * num_groups),
                       num_denoising_groups=num_groups)
        return label_query, box_query, angle_query, attn_mask, dn_meta

    def generate_dn_angles(self, gt_angles: Tensor, num_groups: int) -> Tensor:
        """Noisy angles (2 * num_groups * num_targets,), positives then negatives per group."""
        expanded = gt_angles.repeat(2 * num_groups)
        num_targets = len(gt_angles)
        if num_targets == 0:
            return expanded
        magnitude = torch.rand_like(expanded)
        negative = (torch.arange(len(expanded), device=expanded.device) // num_targets) % 2 == 1
        magnitude = magnitude + negative.to(magnitude)
        sign = torch.randint_like(expanded, 0, 2) * 2 - 1
        return wrap_le90(expanded + sign * magnitude * expanded * self.angle_noise_scale)

    def collate_per_target(self, queries: List[Tensor], num_targets: List[int],
                           num_groups: int) -> List[Tensor]:
        """Scatter per-target queries (as mmdet orders them) into padded (bs, n_dn, ...) tensors.

        mmdet's ``collate_dn_queries`` layout: per image, group g holds its positives at
        ``[2 g M, 2 g M + n)`` and negatives at ``[(2 g + 1) M, (2 g + 1) M + n)``, M the largest
        number of targets in the batch.
        """
        device = queries[0].device
        max_num_target = max(num_targets)
        batch_idx = torch.cat([torch.full((n, ), i, dtype=torch.long, device=device)
                               for i, n in enumerate(num_targets)])
        within = torch.cat([torch.arange(n, device=device) for n in num_targets])
        slots = torch.cat([within + max_num_target * i for i in range(2 * num_groups)])
        rows = batch_idx.repeat(2 * num_groups)
        collated = []
        for query in queries:
            padded = query.new_zeros((len(num_targets), 2 * num_groups * max_num_target) +
                                     tuple(query.shape[1:]))
            padded[rows, slots] = query
            collated.append(padded)
        return collated

