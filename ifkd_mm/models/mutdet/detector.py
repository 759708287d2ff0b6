"""MutDet (ECCV 2024): mutually optimizing detection pre-training on ARS-DETR."""
from typing import Dict, List, Optional, Tuple

import torch
from mmdet.structures import SampleList
from mmrotate.registry import MODELS
from torch import Tensor

from ..ars_detr import ARSDETR
from .contrastive import EmbeddingHead, contrastive_alignment_loss
from .enhancement import MutualEnhancementModule, pad_objects


@MODELS.register_module()
class MutDet(ARSDETR):
    """ARS-DETR pre-trained on SAM pseudo-labels (boxes, 256 cluster classes, 256-d embeddings).

    One training step (MutDet section 3):

    * the pseudo-boxes of each image are ordered by area and capped at ``max_objects`` (memory);
    * the frozen backbone and the encoder give the features F; the mutual enhancement module
      (eq. 1) turns F and the boxes' embeddings O into F_enh and O_enh;
    * main branch: ARS-DETR's query selection, decoder and losses on F_enh, against the
      pseudo-labels (focal over the clusters, L1 + GIoU on the box without its angle, AR-CSL
      angle), plus the contrastive alignment (eq. 2-3) of the embeddings that ``embedding_head``
      predicts for the Hungarian positives of the encoder's top-k proposals and of the last decoder
      layer with their boxes' O_enh (``loss_ca_enc``, ``loss_ca_dec``);
    * auxiliary siamese branch (section 3.5): the same query selection, decoder and heads (the same
      modules, not copies) and the same denoising queries on the unenhanced F, with the same
      detection losses and the decoder alignment (eq. 5), all prefixed ``aux.``.

    Prediction is plain ARS-DETR on F (the enhancement needs embeddings that fine-tuning lacks).
    The public code also aligns every encoder token and the denoising queries; here the paper's
    top-k encoder positives and the decoder's matched queries.

    Args:
        enhancement: :class:`MutualEnhancementModule` arguments (3 layers, 8 heads, MLP 2048).
        object_dims: width of the pseudo-label embeddings (256).
        max_objects: pseudo-boxes kept per image, largest first.
        tau: temperature of eq. 2 (0.2).
        Others: see :class:`ARSDETR`.
    """
    PRETRAINING_ONLY = ('enhancement.', 'embedding_head.')
    PSEUDO_CLASS_KEYS = ('bbox_head.cls_branches.', 'dn_query_generator.label_embedding.')

    def __init__(self, *args, enhancement: Optional[dict] = None, object_dims: int = 256,
                 max_objects: int = 1000, tau: float = 0.2, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.enhancement = MutualEnhancementModule(
            embed_dims=self.embed_dims, object_dims=object_dims, **(enhancement or {}))
        # O_enh lives in the transformer's width (object embeddings are projected into it)
        self.embedding_head = EmbeddingHead(embed_dims=self.embed_dims,
                                            object_dims=self.embed_dims)
        self.max_objects = max_objects
        self.tau = tau

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Losses of the enhanced branch and of the siamese branch (see the class docstring)."""
        objects, object_mask, kept = pad_objects(
            [s.gt_instances.embeddings for s in batch_data_samples],
            [s.gt_instances.bboxes.tensor for s in batch_data_samples], self.max_objects)
        samples = []
        for sample, index in zip(batch_data_samples, kept):
            sample = sample.clone()
            sample.gt_instances = sample.gt_instances[index]  # the objects' order: by area
            samples.append(sample)
        encoder_inputs, decoder_inputs = self.pre_transformer(self.extract_feat(batch_inputs),
                                                              samples)
        encoded = self.forward_encoder(**encoder_inputs)
        enhanced_memory, enhanced_objects = self.enhancement(
            encoded['memory'], encoded['memory_mask'], objects, object_mask)
        targets = [enhanced_objects[i, :len(index)] for i, index in enumerate(kept)]
        denoising = self.dn_query_generator(samples)
        losses = self.branch_losses(enhanced_memory, encoded, decoder_inputs, samples, targets,
                                    denoising, align_encoder=True)
        siamese = self.branch_losses(encoded['memory'], encoded, decoder_inputs, samples,
                                     targets, denoising, align_encoder=False)
        losses.update({f'aux.{name}': value for name, value in siamese.items()})
        return losses

    def branch_losses(self, memory: Tensor, encoded: dict, decoder_inputs: dict,
                      samples: SampleList, targets: List[Tensor], denoising: tuple,
                      align_encoder: bool) -> Dict[str, Tensor]:
        """ARS-DETR's losses on ``memory`` plus the contrastive alignment with ``targets``."""
        proposals = self.encoder_proposals(memory, encoded['memory_mask'],
                                           encoded['spatial_shapes'])
        queries, head_inputs = self.queries_from_proposals(proposals, memory, samples, denoising)
        decoded = self.forward_decoder(**dict(decoder_inputs, **queries))
        losses = self.bbox_head.loss(**head_inputs, **decoded, batch_data_samples=samples)
        head = self.bbox_head
        metas = [s.metainfo for s in samples]
        gts = [head.prepare_targets(s.gt_instances, meta) for s, meta in zip(samples, metas)]
        num_dn = head_inputs['dn_meta']['num_denoising_queries']
        classes, boxes, angles = (x[-1, :, num_dn:] for x in head(**decoded))
        features = decoded['hidden_states'][-1, :, num_dn:]
        losses['loss_ca_dec'] = self.alignment(features, (classes, boxes, angles), gts, metas,
                                               targets)
        if align_encoder:
            encoder_predictions = (proposals['classes'], proposals['coords_unact'].sigmoid(),
                                   proposals['angles'])
            losses['loss_ca_enc'] = self.alignment(
                proposals['features'], encoder_predictions,
                [head.as_binary(gt) for gt in gts], metas, targets)
        return losses

    def alignment(self, features: Tensor, predictions: Tuple[Tensor, Tensor, Tensor],
                  gts: list, metas: List[dict], targets: List[Tensor]) -> Tensor:
        """Eq. 2 between the predicted embeddings of the Hungarian positives (pooled over the
        batch) and the enhanced embeddings of the pseudo-boxes they are matched to."""
        predicted, matched = [], []
        with torch.no_grad():
            matches = [self.bbox_head.match(c, b, a, gt, meta) for c, b, a, gt, meta in
                       zip(*[x.detach() for x in predictions], gts, metas)]
        for feature, target, (queries, objects) in zip(features, targets, matches):
            predicted.append(feature[queries])
            matched.append(target[objects])
        return contrastive_alignment_loss(self.embedding_head(torch.cat(predicted)),
                                          torch.cat(matched), tau=self.tau)
