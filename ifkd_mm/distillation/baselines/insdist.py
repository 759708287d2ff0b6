"""InsDist (Li, Cheng, Wang, Zhou, Han, "Instance-Aware Distillation for Efficient Object
Detection in Remote Sensing Images", IEEE TGRS 61, 2023; IFKD's reference [15]).

The paper's text and equations could not be read here: only its abstract and the authors' public
code (github swift1988/InsDist, ``Distiller/InsDist.py``, which holds the feature part alone and
no hyper-parameter values) were available. What follows is the closest reading of the two; every
choice the sources leave open is named in :class:`InsDistLoss`.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.ops import roi_align
from torch import Tensor

from ...registry import register_model
from ..base import DistillBatch, DistillLoss
from .fgd import horizontal_boxes
from .fitnet import conv_adapters, paired_levels


def level_strides(level_sizes: Sequence[Sequence[int]], input_size: Sequence[int]) -> List[int]:
    """Strides of FPN levels that halve from level to level: the finest level's power-of-two
    stride (the padded input width over its width, rounded in log2) doubled at every level.

    Sizes of coarse levels are rounded up (``ceil(W_in / s)``), so their own ratio can be off
    (a 1-cell level of a 64 px input is at stride 128, not 64); the finest level's is exact.
    """
    finest = 2 ** round(math.log2(input_size[1] / level_sizes[0][1]))
    return [finest * 2 ** level for level in range(len(level_sizes))]


def box_cells(boxes: Tensor, stride: int, feat_size: Sequence[int]) -> Tensor:
    """The cells ``(x0, y0, x1, y1)`` (inclusive, int64) of boxes on a level of ``stride``:
    each input-pixel coordinate divided by the stride, truncated and clamped into the map."""
    cells = (boxes.float() / stride).long()
    cells[:, 0::2] = cells[:, 0::2].clamp(0, int(feat_size[1]) - 1)
    cells[:, 1::2] = cells[:, 1::2].clamp(0, int(feat_size[0]) - 1)
    return cells


def normalised_energy(feature: Tensor, prototype: Tensor) -> Tensor:
    """Min-max normalised similarity of every location to an instance prototype, (H, W):
    ``E = <F(x), g>``, ``(E - min E) / (max E - min E)`` over the map (0 where E is constant)."""
    energy = torch.einsum('chw,c->hw', feature, prototype)
    low, high = energy.min(), energy.max()
    return (energy - low) / (high - low).clamp(min=torch.finfo(energy.dtype).tiny)


def instance_mask(feature: Tensor, boxes: Tensor, stride: int, threshold: float) -> Tensor:
    """The parameter-free instance mask of one image on one teacher level, (H, W) in {0, 1}.

    Each box's prototype ``g`` is the mean teacher feature over its cells (:func:`box_cells`);
    the locations whose :func:`normalised_energy` to ``g`` exceeds ``threshold`` are the
    instance's foreground, anywhere in the image (the mask decouples instance-related features,
    not box areas). A box whose first and last cell coincide in x or in y marks its first cell
    alone, as in the authors' code. The mask is the union over the boxes; detached.
    """
    feature = feature.detach()
    height, width = feature.shape[-2:]
    mask = torch.zeros(height, width, dtype=torch.bool, device=feature.device)
    for x0, y0, x1, y1 in box_cells(boxes, stride, (height, width)).tolist():
        if x0 == x1 or y0 == y1:
            mask[y0, x0] = True
            continue
        prototype = feature[:, y0:y1 + 1, x0:x1 + 1].mean((1, 2))
        mask |= normalised_energy(feature, prototype) > threshold
    return mask.to(feature.dtype)


def masked_feature_distances(adapted_student: Tensor, teacher: Tensor,
                             mask: Tensor) -> Tuple[Tensor, Tensor]:
    """Foreground and background feature distances of one level over the batch:
    ``sqrt(sum M (F_T - A(F_S))^2 + eps)`` and the same with ``1 - M`` (eps = 1e-8 keeps the
    gradient finite at zero); ``mask`` is (B, H, W)."""
    sq = (teacher - adapted_student).pow(2)
    fg = (sq * mask[:, None]).sum()
    bg = (sq * (1 - mask[:, None])).sum()
    return (fg + 1e-8).sqrt(), (bg + 1e-8).sqrt()


def roi_levels(boxes: Tensor, num_levels: int, finest_scale: float = 56.0) -> Tensor:
    """The FPN level each box is pooled from (FPN eq. 1 as mmdet's ``SingleRoIExtractor``):
    ``floor(log2(sqrt(w h) / finest_scale + 1e-6))`` clamped to ``[0, num_levels - 1]``."""
    scale = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).clamp(min=0).sqrt()
    return torch.floor(torch.log2(scale / finest_scale + 1e-6)).clamp(0, num_levels - 1).long()


def instance_features(levels: Sequence[Tensor], strides: Sequence[int],
                      boxes: Sequence[Tensor], output_size: int) -> List[Tensor]:
    """RoIAlign (mmcv, ``aligned=True``, adaptive sampling) features of every GT box from the
    level :func:`roi_levels` assigns it, flattened, one (N_i, C * output_size^2) per image."""
    counts = [len(b) for b in boxes]
    if sum(counts) == 0:
        return [levels[0].new_zeros(0, levels[0].shape[1] * output_size ** 2) for _ in boxes]
    rois = torch.cat([torch.cat([b.new_full((len(b), 1), index), b.to(levels[0].dtype)], 1)
                      for index, b in enumerate(boxes)])
    assigned = roi_levels(rois[:, 1:], len(levels))
    pooled = levels[0].new_zeros(len(rois), levels[0].shape[1], output_size, output_size)
    for level, (features, stride) in enumerate(zip(levels, strides)):
        index = (assigned == level).nonzero().squeeze(1)
        if len(index):
            pooled = pooled.index_put((index, ), roi_align(
                features, rois[index], (output_size, output_size), 1.0 / stride, 0, 'avg', True))
    return list(pooled.flatten(1).split(counts))


def relation_matrix(embeddings: Tensor) -> Tensor:
    """Pairwise Euclidean distances of instance embeddings divided by their mean over all
    N x N pairs (diagonal included), (N, N)."""
    distances = torch.cdist(embeddings[None], embeddings[None])[0]
    return distances / distances.mean().clamp(min=torch.finfo(distances.dtype).tiny)


def relation_loss(student_embeddings: Sequence[Tensor],
                  teacher_embeddings: Sequence[Tensor]) -> Tensor:
    """Smooth-L1 (beta 1) between the student's and the teacher's :func:`relation_matrix`,
    averaged over the N x N entries of an image and over the images with two or more
    instances (0 when there are none). Two instances give the constant ``[[0, 2], [2, 0]]``:
    relations carry information from three instances on."""
    losses = [F.smooth_l1_loss(relation_matrix(s), relation_matrix(t))
              for s, t in zip(student_embeddings, teacher_embeddings) if len(s) > 1]
    if not losses:
        return student_embeddings[0].new_zeros(())
    return torch.stack(losses).mean()


@register_model
class InsDistLoss(DistillLoss):
    """Instance-aware distillation on every FPN level: masked feature imitation and relations
    between instances, returned as ``loss_insdist_fg``, ``loss_insdist_bg`` (the feature part,
    ``w_fg * sum_l D_fg^l`` and ``w_bg * sum_l D_bg^l``) and ``loss_insdist_rel`` (the relation
    part, ``w_rel * L_rel``).

    Feature part (the authors' code, ``InsDist.mask_ours``/``dist``/``forward``): a mask is
    made once per image on the teacher's level ``mask_level`` (their code uses the stride-32
    level; P5, index 2, of RetinaNet's P3-P7) by :func:`instance_mask`, resized with nearest
    neighbours to every level, and ``D_fg^l, D_bg^l`` are the square roots of the summed squared
    differences between the teacher's level and the student's through a 1x1 conv adapter inside
    and outside the mask (:func:`masked_feature_distances`), summed over the batch (not
    averaged), as in that code.

    Relation part (the abstract alone: "relations between different instances ... intra-class
    compactness and inter-class dispersion"; not in the public code): every GT box's feature is
    taken with mmcv's RoIAlign (7 x 7) from the FPN level the FPN/mmdet rule assigns it
    (:func:`roi_levels`, finest scale 56), once from the teacher and once from the student's own
    (unadapted) level, and the normalised pairwise-distance matrices of the instances of each
    image are matched with smooth L1 (:func:`relation_loss`), as in GID's instance relation
    (Dai et al., CVPR 2021) and RKD's distance-wise loss. Distances of one model are divided by
    their own mean, so the term does not depend on either model's feature scale or channels and
    has no trainable part.

    Interpretations, where neither source decides:

    * Energy normalisation: min-max, ``(E - min) / (max - min)``. The public code divides
      ``E - min`` by ``max`` alone, which is not bounded by 1 and changes with the sign of
      ``min``; the paper calls the module parameter-free and thresholds a normalised energy.
    * ``threshold`` 0.5, ``w_fg`` 5e-5, ``w_bg`` 2.5e-5, ``w_rel`` 1.0: the paper's values
      could not be read and the code takes them as arguments. The square-root distances grow
      with the square root of the number of feature elements: about 7e3 each (summed over the
      levels) for the demo's trained R50 teacher and a fresh R18 student (4 images of 256 px,
      128 channels), so 0.34 and 0.17 there against a detection loss of 1.8; 800 x 1333 inputs
      with 256 channels and 2 images have 4x the square root, so the terms stay near or below
      the detection loss if the features are alike. The background weight is half the
      foreground one (the instance-irrelevant area is the one the method plays down). The
      relation term, a mean smooth L1 of normalised distances, is weighted 1 (0.02 there).
    * Adapters: the code takes per-level ``adaptation_layers`` from outside; here a 1x1 conv
      per level (as FitNet's regressor), also when the channels are equal.
    * Relation: Euclidean distances normalised by their mean (not cosine similarities), per
      image (not across the batch), flattened 7 x 7 RoI features, averaged smooth L1.
    * Boxes are placed on the levels by the levels' strides (:func:`level_strides`), as in the
      authors' code (box / stride); rotated GT boxes give their outer horizontal box.

    Args:
        student_channels, teacher_channels: FPN channels of student and teacher.
        num_levels: number of FPN levels (one adapter each).
        mask_level: index of the teacher level the instance mask is computed on.
        threshold: normalised-energy threshold of the instance mask.
        weight_fg, weight_bg, weight_rel: weights of the three terms.
        roi_size: RoIAlign output size of the instance features.
    """

    requires = ('neck', )

    def __init__(self,
                 student_channels: int = 256,
                 teacher_channels: int = 256,
                 num_levels: int = 5,
                 mask_level: int = 2,
                 threshold: float = 0.5,
                 weight_fg: float = 5e-5,
                 weight_bg: float = 2.5e-5,
                 weight_rel: float = 1.0,
                 roi_size: int = 7,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not 0 <= mask_level < num_levels:
            raise ValueError(f'mask_level {mask_level} is not one of the {num_levels} levels')
        self.student_channels = student_channels
        self.teacher_channels = teacher_channels
        self.num_levels = num_levels
        self.mask_level = mask_level
        self.threshold = threshold
        self.weight_fg = weight_fg
        self.weight_bg = weight_bg
        self.weight_rel = weight_rel
        self.roi_size = roi_size
        self.adapters = conv_adapters(student_channels, teacher_channels, num_levels, 1)

    def forward(self, student: Dict[str, object], teacher: Dict[str, object],
                batch: DistillBatch) -> Dict[str, Tensor]:
        s_levels, t_levels = paired_levels(student, teacher, 'neck', self.num_levels)
        strides = level_strides([t.shape[-2:] for t in t_levels], batch.inputs.shape[-2:])
        boxes = [horizontal_boxes(sample).to(batch.inputs.device) for sample in batch.data_samples]
        source = t_levels[self.mask_level]
        mask = torch.stack([instance_mask(source[i], b, strides[self.mask_level], self.threshold)
                            for i, b in enumerate(boxes)])
        fg_loss, bg_loss = 0, 0
        for adapter, s, t in zip(self.adapters, s_levels, t_levels):
            level_mask = F.interpolate(mask[:, None], size=t.shape[-2:], mode='nearest')[:, 0]
            fg, bg = masked_feature_distances(adapter(s), t, level_mask)
            fg_loss, bg_loss = fg_loss + fg, bg_loss + bg
        relation = relation_loss(instance_features(s_levels, strides, boxes, self.roi_size),
                                 instance_features(t_levels, strides, boxes, self.roi_size))
        return dict(loss_insdist_fg=self.weight_fg * fg_loss,
                    loss_insdist_bg=self.weight_bg * bg_loss,
                    loss_insdist_rel=self.weight_rel * relation)
