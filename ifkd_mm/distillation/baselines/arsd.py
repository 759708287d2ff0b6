"""ARSD (Yang et al., "Adaptive Knowledge Distillation for Lightweight Remote Sensing Object
Detectors Optimizing", IEEE TGRS 2022): MCFI and SSRD as one loss module."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.models.task_modules.prior_generators import anchor_inside_flags
from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import bbox_overlaps, cat_boxes, get_box_tensor
from mmengine.model import normal_init
from mmengine.structures import InstanceData
from torch import Tensor, nn

from ...registry import register_model
from ..base import DistillBatch, DistillLoss
from ..rotated.kd_rnet import per_anchor
from .fgd import horizontal_boxes
from .fitnet import paired_levels


def relative_sides(boxes: Tensor, input_size: Sequence[int]) -> Tensor:
    """``sqrt(w h) / sqrt(H W)`` of each box (n, 4) in an input of size (H, W)."""
    side = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).clamp(min=0).sqrt()
    return side / (float(input_size[0]) * float(input_size[1])) ** 0.5


def target_levels(boxes: Tensor, input_size: Sequence[int], num_levels: int) -> Tensor:
    """The FPN level of each box (n, 4):
    ``clamp(floor(L - 1 + log2(sqrt(w h) / sqrt(H W) + 1e-6)), 0, L - 1)``."""
    ratio = relative_sides(boxes, input_size)
    return torch.floor(num_levels - 1 + torch.log2(ratio + 1e-6)).clamp(0, num_levels - 1).long()


def area_weights(boxes: Tensor, input_size: Sequence[int]) -> Tensor:
    """The MCFI area weight of each box (n, 4): ``1 + exp(-2 sqrt(w h) / sqrt(H W))``."""
    return 1 + torch.exp(-2 * relative_sides(boxes, input_size))


def core_feature_masks(boxes: Tensor, feat_sizes: Sequence[Sequence[int]],
                       input_size: Sequence[int]) -> List[Tensor]:
    """The MCFI mask of each level (H_l, W_l) for one image's boxes (n, 4), in input pixels.

    A box marks the cells ``floor(x1 W_l / W) <= x < max(floor(x2 W_l / W), that + 1)`` (same in
    y) of its :func:`target_levels` level with its :func:`area_weights` weight; the largest
    weight wins where boxes overlap; all other cells are 0.
    """
    levels = target_levels(boxes, input_size, len(feat_sizes))
    weights = area_weights(boxes, input_size)
    masks = []
    for level, (height, width) in enumerate(feat_sizes):
        height, width = int(height), int(width)
        mask = boxes.new_zeros(height, width, dtype=torch.float32)
        chosen = levels == level
        if chosen.any():
            scaled = boxes[chosen].float() * boxes.new_tensor(
                [width / input_size[1], height / input_size[0]] * 2).float()
            x0 = scaled[:, 0].floor().clamp(0, width - 1)
            y0 = scaled[:, 1].floor().clamp(0, height - 1)
            x1 = torch.maximum(scaled[:, 2].floor().clamp(max=width), x0 + 1)
            y1 = torch.maximum(scaled[:, 3].floor().clamp(max=height), y0 + 1)
            rows = torch.arange(height, device=boxes.device, dtype=torch.float32)
            cols = torch.arange(width, device=boxes.device, dtype=torch.float32)
            in_rows = (rows >= y0[:, None]) & (rows < y1[:, None])
            in_cols = (cols >= x0[:, None]) & (cols < x1[:, None])
            inside = in_rows[:, :, None] & in_cols[:, None, :]
            mask = (inside * weights[chosen].float()[:, None, None]).amax(0)
        masks.append(mask)
    return masks


def imitation_loss(student: Sequence[Tensor], teacher: Sequence[Tensor],
                   masks: Sequence[Tensor]) -> Tensor:
    """``sum_l sum_{b,i,j} M sum_c (T - S)^2 / (2 sum_l sum_{b,i,j} M)`` over levels of
    (B, C, H_l, W_l) maps and (B, H_l, W_l) masks; 0 when every mask is empty."""
    error = sum(((t - s).pow(2) * m[:, None]).sum() for s, t, m in zip(student, teacher, masks))
    total = sum(m.sum() for m in masks)
    return error / (2 * total).clamp(min=1)


def centerness(points: Tensor, boxes: Tensor) -> Tensor:
    """``sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b))`` of points (n, 2) in boxes (n, 4),
    from the distances to the box sides (clamped at 0: 0 for a point outside its box)."""
    left, top = (points - boxes[:, :2]).clamp(min=0).unbind(1)
    right, bottom = (boxes[:, 2:] - points).clamp(min=0).unbind(1)
    horizontal, vertical = torch.stack([left, right], 1), torch.stack([top, bottom], 1)
    ratio = (horizontal.amin(1) / horizontal.amax(1).clamp(min=1e-12)) * \
        (vertical.amin(1) / vertical.amax(1).clamp(min=1e-12))
    return ratio.sqrt()


def strict_selection(iou_teacher: Tensor, iou_student: Tensor, iou_anchor: Tensor) -> Tensor:
    """The strict supervision rule ``IoU_T > IoU_S > IoU_A`` (all with the GT), boolean."""
    return (iou_teacher > iou_student) & (iou_student > iou_anchor)


def level_normalised_loss(losses: Tensor, weights: Tensor, levels: Tensor,
                          num_levels: int) -> Tensor:
    """``sum_l sum_{i in l} w_i L_i / sum_{i in l} w_i``; a level whose weights are all 0 adds 0."""
    weighted = losses.new_zeros(num_levels).index_add(0, levels, weights * losses)
    total = weights.new_zeros(num_levels).index_add(0, levels, weights)
    return (weighted / torch.where(total > 0, total, torch.ones_like(total))).sum()


@register_model
class ARSDLoss(DistillLoss):
    """ARSD, adaptive reinforcement supervision distillation (IFKD's reference [43]):
    multiscale core features imitation (MCFI) and strict supervision regression distillation
    (SSRD), returned as ``loss_arsd_mcfi`` and ``loss_arsd_ssrd``.

    Sources. The paper's text and equations could not be read here; what is implemented comes
    from its abstract, its overview figure and the authors' released code (github
    youngfly/Remote-Sensing-Distillation: ``mmdet/models/detectors/distill_atss.py``, class
    ``Distill_Atss``, and the ATSS head's ``loss_reg`` in ``dense_heads/atss_head_new.py``; the
    repository's README links it to the paper). The code was read for the selections,
    normalisations and weights, not copied. Where we depart from it or had to choose, the point
    is marked *interpretation*.

    MCFI (abstract: "adaptively select the multiscale core features of objects ... and focus
    more on the features of small objects by an area-weighted strategy"; figure: teacher FPN
    against the adapted student FPN, and the class outputs):

    * Multiscale selection (code): each GT box goes to one FPN level by its size relative to the
      padded input, ``l = clamp(floor(L - 1 + log2(sqrt(w h) / sqrt(H W) + 1e-6)), 0, L - 1)``
      (:func:`target_levels`; the code writes 4 for ``L - 1``): an object as large as the image
      goes to the coarsest level, each halving of its side one level finer.
    * Area weight (code): ``a = 1 + exp(-2 sqrt(w h) / sqrt(H W))`` in (1, 2], about 2 for tiny
      objects (:func:`area_weights`).
    * Mask ``M`` (:func:`core_feature_masks`): the cells of the box scaled to its level take
      ``a``. *Interpretation*: the released code writes ``a`` into an integer mask (truncating it
      to 1) and then binarises the mask, so it trains with a binary mask; we keep ``a``, as the
      paper describes. Where boxes overlap the larger ``a`` (smaller box) wins; a box covers at
      least one cell (the code drops a box that crosses no cell border, as small objects, which
      the weighting favours, often do); x is scaled by the level's width ratio and y by its
      height ratio (the code swaps the two, equal up to the rounding of odd sizes).
    * Imitation (:func:`imitation_loss`; the code, after Wang et al.'s fine-grained feature
      imitation, CVPR 2019): ``L = sum_{b,l,i,j} M sum_c (T - S)^2 / (2 sum_{b,l,i,j} M)`` on the
      FPN levels (teacher ``T``; student ``S`` through one 1x1 adaptation conv shared by the
      levels, initialised N(0, 0.01) as in the code) and, with the same mask, on the dense
      head's class logits (pre-sigmoid). *Interpretation*: the code applies every image's mask
      to every image of the batch (its own comment calls this wrong; the per-image variant is
      there, switched off); we pair each mask with its own image (that variant), and drop the
      code's ``+ 1`` division guard in the denominator (an empty mask gives 0).
      *Interpretation*: the class term sums over the classes as the code does, but averages
      over the ``A`` anchors of a cell: the code's ATSS head has one anchor per cell, and a sum
      over RetinaNet's 9 x K logits would weigh the term 9 times more than the code's weight
      was set for.
    * ``loss_arsd_mcfi = feat_weight * L_feat + cls_weight * L_cls / A``, 0.01 and 0.01 (code).

    SSRD (abstract: "select the optimal regression results for distillation"; figure:
    regression and centre-ness, a location weight "LW"):

    * On the positive anchors of the head's own assignment (the student head's anchor
      generator, box coder, assigner and ``allowed_border``; the teacher must share the anchors
      and the coder), student and teacher deltas are decoded to boxes; the teacher's box is
      distilled only under the code's strict rule (:func:`strict_selection`)
      ``IoU(b_T, g) > IoU(b_S, g) > IoU(a, g)``: the teacher better than the student, and the
      student already better than its anchor ``a``. *Interpretation*: ``g`` is the anchor's
      assigned GT (the code takes the best IoU over the image's GT boxes).
    * Location weight (code: the ATSS centre-ness *target*, not the predicted centre-ness, so it
      needs no centre-ness branch): :func:`centerness` of the anchor centre in its GT box.
    * Loss (:func:`level_normalised_loss`, code): ``1 - GIoU(b_S, b_T)`` (mmdet's aligned
      ``bbox_overlaps``) weighted by ``w = selected * centerness``, divided per FPN level by the
      level's ``sum w`` over the batch, summed over levels.
    * ``loss_arsd_ssrd = ssrd_weight * L``; 0.2 is the code's regression weight 0.1 times its
      GIoU loss weight 2.0.

    A part switched off (``with_mcfi`` / ``with_ssrd``) is neither computed nor returned, and
    the outputs only it reads are not recorded.

    Args:
        head: the student's ``bbox_head`` config: its ``anchor_generator`` (``A``; SSRD's
            anchors) and ``bbox_coder`` (SSRD). A head without one has ``A = 1``, and no SSRD.
        train_cfg: the student's ``train_cfg`` (``assigner``, ``allowed_border``); SSRD.
        student_channels, teacher_channels: FPN channels of student and teacher.
        num_levels: number of FPN levels.
        with_mcfi, with_ssrd: whether to compute each part.
        feat_weight, cls_weight: weights of the FPN and class-logit imitation (MCFI).
        ssrd_weight: weight of the regression distillation.
    """

    requires = ('neck', 'cls_scores', 'bbox_preds')

    def __init__(self,
                 head: dict,
                 train_cfg: Optional[dict] = None,
                 student_channels: int = 256,
                 teacher_channels: int = 256,
                 num_levels: int = 5,
                 with_mcfi: bool = True,
                 with_ssrd: bool = True,
                 feat_weight: float = 0.01,
                 cls_weight: float = 0.01,
                 ssrd_weight: float = 0.2,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not (with_mcfi or with_ssrd):
            raise ValueError('ARSDLoss: with_mcfi and with_ssrd are both off')
        self.student_channels = student_channels
        self.teacher_channels = teacher_channels
        self.num_levels = num_levels
        self.with_mcfi, self.with_ssrd = with_mcfi, with_ssrd
        self.feat_weight, self.cls_weight, self.ssrd_weight = feat_weight, cls_weight, ssrd_weight
        self.requires = (('neck', 'cls_scores') if with_mcfi else ()) + \
            (('bbox_preds', ) if with_ssrd else ())
        if with_mcfi:
            self.adapter = nn.Conv2d(student_channels, teacher_channels, kernel_size=1)
            normal_init(self.adapter, std=0.01)
        prior_generator = TASK_UTILS.build(head['anchor_generator']) \
            if 'anchor_generator' in head else None
        self.anchors_per_cell = prior_generator.num_base_priors[0] if prior_generator else 1
        if with_ssrd:
            if prior_generator is None or train_cfg is None:
                raise ValueError('ARSDLoss: SSRD needs the student\'s anchor-based bbox_head '
                                 '(anchor_generator, bbox_coder) as head= and its train_cfg '
                                 '(assigner) as train_cfg=')
            self.prior_generator = prior_generator
            self.bbox_coder = TASK_UTILS.build(head['bbox_coder'])
            self.assigner = TASK_UTILS.build(train_cfg['assigner'])
            self.allowed_border = train_cfg.get('allowed_border', -1)

    def forward(self, student: Dict[str, object], teacher: Dict[str, object],
                batch: DistillBatch) -> Dict[str, Tensor]:
        losses = {}
        if self.with_mcfi:
            feat_loss, cls_loss = self.mcfi(student, teacher, batch)
            losses['loss_arsd_mcfi'] = self.feat_weight * feat_loss + self.cls_weight * cls_loss
        if self.with_ssrd:
            losses['loss_arsd_ssrd'] = self.ssrd_weight * self.ssrd(student, teacher, batch)
        return losses

    def mcfi(self, student: Dict[str, object], teacher: Dict[str, object],
             batch: DistillBatch) -> Tuple[Tensor, Tensor]:
        """The FPN and the class-logit (per anchor) imitation losses, unweighted."""
        s_feats, t_feats = paired_levels(student, teacher, 'neck', self.num_levels)
        s_cls, t_cls = paired_levels(student, teacher, 'cls_scores', self.num_levels)
        for s_score, t_score, t_feat in zip(s_cls, t_cls, t_feats):
            if s_score.shape != t_score.shape:
                raise ValueError(f'cls_scores: student {tuple(s_score.shape)} and teacher '
                                 f'{tuple(t_score.shape)} differ (anchors or classes)')
            if t_score.shape[-2:] != t_feat.shape[-2:]:
                raise ValueError(f'cls_scores {tuple(t_score.shape[-2:])} and neck '
                                 f'{tuple(t_feat.shape[-2:])} levels differ in size')
        sizes = [t.shape[-2:] for t in t_feats]
        input_size = batch.inputs.shape[-2:]
        per_image = [core_feature_masks(horizontal_boxes(sample).to(t_feats[0].device), sizes,
                                        input_size) for sample in batch.data_samples]
        masks = [torch.stack(level).to(t_feats[0].dtype) for level in zip(*per_image)]
        return (imitation_loss([self.adapter(s) for s in s_feats], t_feats, masks),
                imitation_loss(s_cls, t_cls, masks) / self.anchors_per_cell)

    def ssrd(self, student: Dict[str, object], teacher: Dict[str, object],
             batch: DistillBatch) -> Tensor:
        """The level-normalised, location-weighted GIoU loss of the strictly selected anchors."""
        s_reg, t_reg = paired_levels(student, teacher, 'bbox_preds', self.num_levels)
        for s, t in zip(s_reg, t_reg):
            if s.shape != t.shape:
                raise ValueError(f'bbox_preds: student {tuple(s.shape)} and teacher '
                                 f'{tuple(t.shape)} differ (anchors or box coder)')
        device = s_reg[0].device
        sizes = [level.shape[-2:] for level in s_reg]
        level_priors = self.prior_generator.grid_priors(sizes, device=device)
        flat_priors = get_box_tensor(cat_boxes(level_priors)).float()
        prior_levels = torch.cat([torch.full((len(p), ), level, device=device, dtype=torch.long)
                                  for level, p in enumerate(level_priors)])
        box_dim = self.bbox_coder.encode_size
        s_deltas, t_deltas = per_anchor(s_reg, box_dim), per_anchor(t_reg, box_dim)
        giou_losses, weights, levels = [], [], []
        for i, sample in enumerate(batch.data_samples):
            meta = sample.metainfo
            valid = torch.cat(self.prior_generator.valid_flags(sizes, meta['pad_shape'], device))
            inside = anchor_inside_flags(flat_priors, valid, meta['img_shape'][:2],
                                         self.allowed_border)
            gt = InstanceData(bboxes=horizontal_boxes(sample).to(device).float(),
                              labels=sample.gt_instances.labels)
            priors = flat_priors[inside]
            assigned = self.assigner.assign(InstanceData(priors=priors), gt,
                                            sample.get('ignored_instances', None))
            pos = (assigned.gt_inds > 0).nonzero().squeeze(1)
            if pos.numel() == 0:
                continue
            anchors, targets = priors[pos], gt.bboxes[assigned.gt_inds[pos] - 1]
            s_boxes = get_box_tensor(self.bbox_coder.decode(anchors,
                                                            s_deltas[i][inside][pos].float()))
            t_boxes = get_box_tensor(self.bbox_coder.decode(anchors,
                                                            t_deltas[i][inside][pos].float()))
            with torch.no_grad():
                selected = strict_selection(
                    bbox_overlaps(t_boxes, targets, is_aligned=True),
                    bbox_overlaps(s_boxes, targets, is_aligned=True),
                    bbox_overlaps(anchors, targets, is_aligned=True))
                centres = (anchors[:, :2] + anchors[:, 2:]) / 2
                weights.append(selected * centerness(centres, targets))
            giou_losses.append(1 - bbox_overlaps(s_boxes, t_boxes, mode='giou', is_aligned=True))
            levels.append(prior_levels[inside][pos])
        if not giou_losses:
            return s_deltas.sum() * 0
        return level_normalised_loss(torch.cat(giou_losses), torch.cat(weights),
                                     torch.cat(levels), self.num_levels)
