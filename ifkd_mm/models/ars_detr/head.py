"""ARS-DETR's head: DINO's class and (cx, cy, w, h) branches plus an AR-CSL angle classifier."""
import copy
from typing import Dict, List, Optional, Tuple

import torch
from mmdet.models.dense_heads import DINOHead
from mmdet.models.utils import multi_apply
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from mmdet.utils import InstanceList, reduce_mean
from mmengine.structures import InstanceData
from mmrotate.registry import MODELS, TASK_UTILS
from mmrotate.structures.bbox import RotatedBoxes
from torch import Tensor, nn

from .angle_coder import aspect_ratio, aspect_ratio_weight
from .denoising import rotated_gt_as_hbox


@MODELS.register_module()
class ARSDETRHead(DINOHead):
    """DINO head for le90 rotated boxes: each query's box is (cx, cy, w, h) in its own frame,
    normalised per axis (x, w by the image width; y, h by its height), and its angle the centre of
    the arg-max bin of a 180-bin AR-CSL classifier.

    Losses on every decoder layer, the encoder's top-k proposals (binary labels) and the denoising
    queries: focal, L1 and GIoU on the horizontal box, and ``loss_angle``, the sigmoid BCE against
    AR-CSL soft labels weighted by 2k/(k+1) and averaged over positives and bins.

    Args:
        angle_coder: an :class:`ARCSLCoder` config.
        loss_angle: the angle loss (a sigmoid ``CrossEntropyLoss`` that accepts soft labels).
        Others: see mmdet's ``DINOHead``.
    """

    def __init__(self, *args, angle_coder: dict = dict(type='ARCSLCoder'),
                 loss_angle: dict = dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True,
                                         loss_weight=2.0), **kwargs) -> None:
        self.angle_coder = TASK_UTILS.build(angle_coder)
        super().__init__(*args, **kwargs)
        self.loss_angle = MODELS.build(loss_angle)

    def _init_layers(self) -> None:
        super()._init_layers()
        branch = nn.Linear(self.embed_dims, self.angle_coder.encode_size)
        self.angle_branches = nn.ModuleList(
            [branch if self.share_pred_layer else copy.deepcopy(branch)
             for _ in range(self.num_pred_layer)])

    def forward(self, hidden_states: Tensor, references: List[Tensor]) -> Tuple[Tensor]:
        """Class logits, normalised (cx, cy, w, h) and angle logits of every decoder layer."""
        classes, boxes = super().forward(hidden_states, references)
        angles = torch.stack([branch(state)
                              for branch, state in zip(self.angle_branches, hidden_states)])
        return classes, boxes, angles

    def loss(self, hidden_states: Tensor, references: List[Tensor], enc_outputs_class: Tensor,
             enc_outputs_coord: Tensor, enc_outputs_angle: Tensor, batch_data_samples: SampleList,
             dn_meta: Dict[str, int]) -> dict:
        """Losses of the decoder outputs, the encoder proposals and the denoising queries."""
        gts = [sample.gt_instances for sample in batch_data_samples]
        metas = [sample.metainfo for sample in batch_data_samples]
        classes, boxes, angles = self(hidden_states, references)
        return self.loss_by_feat(classes, boxes, angles, enc_outputs_class, enc_outputs_coord,
                                 enc_outputs_angle, gts, metas, dn_meta)

    def loss_by_feat(self, all_layers_cls_scores: Tensor, all_layers_bbox_preds: Tensor,
                     all_layers_angle_preds: Tensor, enc_cls_scores: Tensor,
                     enc_bbox_preds: Tensor, enc_angle_preds: Tensor,
                     batch_gt_instances: InstanceList, batch_img_metas: List[dict],
                     dn_meta: Dict[str, int]) -> Dict[str, Tensor]:
        """DINO's loss dictionary with an angle term beside each (cls, bbox, iou) triple."""
        gts = [self.prepare_targets(gt, meta) for gt, meta in zip(batch_gt_instances,
                                                                  batch_img_metas)]
        num_dn = dn_meta['num_denoising_queries']
        split = [(x[:, :, num_dn:], x[:, :, :num_dn]) for x in
                 (all_layers_cls_scores, all_layers_bbox_preds, all_layers_angle_preds)]
        (cls, dn_cls), (box, dn_box), (ang, dn_ang) = split
        losses = {}
        per_layer = multi_apply(self.loss_by_feat_single, cls, box, ang,
                                batch_gt_instances=gts, batch_img_metas=batch_img_metas)
        self.name_layer_losses(losses, per_layer, '')
        binary = [self.as_binary(gt) for gt in gts]
        enc = self.loss_by_feat_single(enc_cls_scores, enc_bbox_preds, enc_angle_preds,
                                       batch_gt_instances=binary, batch_img_metas=batch_img_metas)
        for name, value in zip(('cls', 'bbox', 'iou', 'angle'), enc):
            losses[f'enc_loss_{name}'] = value
        if num_dn > 0:
            dn = multi_apply(self.loss_dn_single, dn_cls, dn_box, dn_ang,
                             batch_gt_instances=gts, batch_img_metas=batch_img_metas,
                             dn_meta=dn_meta)
            self.name_layer_losses(losses, dn, 'dn_')
        return losses

    @staticmethod
    def name_layer_losses(losses: dict, per_layer: tuple, prefix: str) -> None:
        """mmdet's names: ``{prefix}loss_x`` for the last layer, ``d{i}.{prefix}loss_x`` before."""
        for name, values in zip(('cls', 'bbox', 'iou', 'angle'), per_layer):
            losses[f'{prefix}loss_{name}'] = values[-1]
            for layer, value in enumerate(values[:-1]):
                losses[f'd{layer}.{prefix}loss_{name}'] = value

    def prepare_targets(self, gt_instances: InstanceData, img_meta: dict) -> InstanceData:
        """Ground truth for matching and losses: pixel xyxy of the horizontal box (mmdet's
        convention), normalised (cx, cy, w, h), AR-CSL labels and their 2k/(k+1) weights."""
        rboxes = gt_instances.bboxes.tensor
        hbox, angles = rotated_gt_as_hbox(rboxes, img_meta['img_shape'])
        ratios = aspect_ratio(rboxes[:, 2], rboxes[:, 3])
        img_h, img_w = img_meta['img_shape'][:2]
        factor = rboxes.new_tensor([img_w, img_h, img_w, img_h])
        return InstanceData(
            labels=gt_instances.labels,
            bboxes=bbox_cxcywh_to_xyxy(hbox) * factor,
            norm_cxcywh=hbox,
            angle_targets=self.angle_coder.encode(angles, ratios),
            angle_weights=aspect_ratio_weight(ratios))

    @staticmethod
    def as_binary(gt_instances: InstanceData) -> InstanceData:
        """The same targets with every label 0 (the encoder's foreground class)."""
        binary = gt_instances.clone()
        binary.labels = torch.zeros_like(gt_instances.labels)
        return binary

    def loss_by_feat_single(self, cls_scores: Tensor, bbox_preds: Tensor, angle_preds: Tensor,
                            batch_gt_instances: InstanceList,
                            batch_img_metas: List[dict]) -> Tuple[Tensor]:
        """Hungarian-matched losses of one layer's (bs, nq, ...) predictions."""
        targets = multi_apply(self.matched_targets, list(cls_scores), list(bbox_preds),
                              list(angle_preds), batch_gt_instances, batch_img_metas)
        return self.losses_from_targets(cls_scores, bbox_preds, angle_preds, targets,
                                        batch_img_metas)

    def matched_targets(self, cls_score: Tensor, bbox_pred: Tensor, angle_pred: Tensor,
                        gt: InstanceData, img_meta: dict) -> tuple:
        """Targets of one image's queries after Hungarian matching."""
        pos, gt_index = self.match(cls_score, bbox_pred, angle_pred, gt, img_meta)
        return self.targets_at(len(bbox_pred), pos, gt_index, gt)

    def match(self, cls_score: Tensor, bbox_pred: Tensor, angle_pred: Tensor, gt: InstanceData,
              img_meta: dict) -> Tuple[Tensor, Tensor]:
        """Hungarian matching of one image's queries to its (prepared) ground truth: the matched
        queries and, for each, the index of its ground truth."""
        img_h, img_w = img_meta['img_shape'][:2]
        factor = bbox_pred.new_tensor([img_w, img_h, img_w, img_h])
        pred = InstanceData(scores=cls_score, bboxes=bbox_cxcywh_to_xyxy(bbox_pred) * factor,
                            angle_logits=angle_pred)
        assigned = self.assigner.assign(pred_instances=pred, gt_instances=gt, img_meta=img_meta)
        pos = torch.nonzero(assigned.gt_inds > 0).squeeze(-1)
        return pos, assigned.gt_inds[pos] - 1

    def targets_at(self, num_queries: int, pos: Tensor, gt_index: Tensor,
                   gt: InstanceData) -> tuple:
        """Per-query labels, box targets, angle targets and weights for positives ``pos``."""
        labels = pos.new_full((num_queries, ), self.num_classes)
        labels[pos] = gt.labels[gt_index]
        box_targets = gt.norm_cxcywh.new_zeros((num_queries, 4))
        box_weights = torch.zeros_like(box_targets)
        box_targets[pos] = gt.norm_cxcywh[gt_index]
        box_weights[pos] = 1
        angle_targets = gt.angle_targets.new_zeros((num_queries, self.angle_coder.encode_size))
        angle_weights = gt.angle_weights.new_zeros((num_queries, 1))
        angle_targets[pos] = gt.angle_targets[gt_index]
        angle_weights[pos, 0] = gt.angle_weights[gt_index]
        return labels, box_targets, box_weights, angle_targets, angle_weights, len(pos)

    def losses_from_targets(self, cls_scores: Tensor, bbox_preds: Tensor, angle_preds: Tensor,
                            targets: tuple, batch_img_metas: List[dict]) -> Tuple[Tensor]:
        """Focal, L1, GIoU and angle losses averaged over the (all-reduced) positives."""
        labels, box_targets, box_weights, angle_targets, angle_weights, num_pos = (
            torch.cat(t) if isinstance(t[0], Tensor) else sum(t) for t in targets)
        cls_scores = cls_scores.reshape(-1, self.cls_out_channels)
        cls_factor = float(num_pos)
        if self.sync_cls_avg_factor:
            cls_factor = reduce_mean(cls_scores.new_tensor([cls_factor])).item()
        loss_cls = self.loss_cls(cls_scores, labels, avg_factor=max(cls_factor, 1))
        num_pos = torch.clamp(reduce_mean(cls_scores.new_tensor([float(num_pos)])), min=1).item()
        factors = torch.cat([
            bbox_preds.new_tensor([m['img_shape'][1], m['img_shape'][0]] * 2).expand(
                bbox_preds.shape[1], 4) for m in batch_img_metas])
        bbox_preds = bbox_preds.reshape(-1, 4)
        loss_iou = self.loss_iou(bbox_cxcywh_to_xyxy(bbox_preds) * factors,
                                 bbox_cxcywh_to_xyxy(box_targets) * factors, box_weights,
                                 avg_factor=num_pos)
        loss_bbox = self.loss_bbox(bbox_preds, box_targets, box_weights, avg_factor=num_pos)
        angle_preds = angle_preds.reshape(-1, self.angle_coder.encode_size)
        loss_angle = self.loss_angle(angle_preds, angle_targets, angle_weights,
                                     avg_factor=num_pos * self.angle_coder.encode_size)
        return loss_cls, loss_bbox, loss_iou, loss_angle

    def loss_dn_single(self, cls_scores: Tensor, bbox_preds: Tensor, angle_preds: Tensor,
                       batch_gt_instances: InstanceList, batch_img_metas: List[dict],
                       dn_meta: Dict[str, int]) -> Tuple[Tensor]:
        """Losses of one layer's denoising queries: positive query i of group g targets its own
        ground truth, negatives are background (mmdet's DINO layout)."""
        num_dn, num_groups = dn_meta['num_denoising_queries'], dn_meta['num_denoising_groups']
        per_group = num_dn // num_groups
        targets = []
        for gt in batch_gt_instances:
            own = torch.arange(len(gt.labels), device=bbox_preds.device)
            pos = (torch.arange(num_groups, device=own.device)[:, None] * per_group +
                   own[None]).flatten()
            targets.append(self.targets_at(num_dn, pos, own.repeat(num_groups), gt))
        return self.losses_from_targets(cls_scores, bbox_preds, angle_preds,
                                        tuple(zip(*targets)), batch_img_metas)

    def predict(self, hidden_states: Tensor, references: List[Tensor],
                batch_data_samples: SampleList, rescale: bool = True) -> InstanceList:
        """Top ``max_per_img`` (query, class) pairs of the last layer as le90 rotated boxes."""
        metas = [sample.metainfo for sample in batch_data_samples]
        classes, boxes, angles = self(hidden_states, references)
        return [self.predict_single(c, b, a, meta, rescale)
                for c, b, a, meta in zip(classes[-1], boxes[-1], angles[-1], metas)]

    def predict_single(self, cls_score: Tensor, bbox_pred: Tensor, angle_pred: Tensor,
                       img_meta: dict, rescale: bool = True,
                       max_per_img: Optional[int] = None) -> InstanceData:
        """One image's detections: x and w scaled by its width, y and h by its height."""
        max_per_img = max_per_img or self.test_cfg.get('max_per_img', len(cls_score))
        scores, index = cls_score.sigmoid().flatten().topk(min(max_per_img, cls_score.numel()))
        query = index // self.num_classes
        img_h, img_w = img_meta['img_shape'][:2]
        cxcywh = bbox_pred[query] * bbox_pred.new_tensor([img_w, img_h, img_w, img_h])
        angle = self.angle_coder.decode(angle_pred[query])
        boxes = RotatedBoxes(torch.cat([cxcywh, angle[:, None]], dim=-1))
        if rescale:
            scale_w, scale_h = img_meta['scale_factor'][:2]
            boxes.rescale_((1 / scale_w, 1 / scale_h))
        return InstanceData(bboxes=boxes, scores=scores, labels=index % self.num_classes)
