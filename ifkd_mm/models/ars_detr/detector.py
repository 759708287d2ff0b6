"""ARS-DETR (Zeng et al., aspect-ratio-sensitive oriented DETR) on mmdet 3.x's DINO."""
import copy
from typing import Dict, Optional, Tuple

import torch
from mmdet.models.detectors import DINO
from mmdet.models.layers import SinePositionalEncoding
from mmdet.structures import OptSampleList
from mmrotate.registry import MODELS
from torch import Tensor, nn

from .denoising import RotatedCdnQueryGenerator
from .transformer import ARSDETRTransformerDecoder, ARSDETRTransformerEncoder


@MODELS.register_module()
class ARSDETR(DINO):
    """Two-stage Deformable DETR with DINO's contrastive denoising and look-forward-twice, whose
    queries carry an angle: classified by AR-CSL, used to turn the decoder's deformable sampling
    (:class:`RotatedMultiScaleDeformableAttention`), noised in the denoising queries. The encoder
    proposals are ranked by their foreground (first-class) score, as in ARS-DETR, not DINO's max
    over classes, because the encoder is trained with binary labels.

    Args:
        dn_cfg: :class:`RotatedCdnQueryGenerator` arguments (label_noise_scale, box_noise_scale,
            angle_noise_scale, group_cfg); classes, dims and queries come from the detector.
        Others: see mmdet's ``DINO``.
    """

    def __init__(self, *args, dn_cfg: Optional[dict] = None, **kwargs) -> None:
        kwargs = copy.deepcopy(kwargs)  # mmdet's DeformableDETR writes into bbox_head
        dn_cfg = dict(dn_cfg or {})
        angle_noise_scale = dn_cfg.pop('angle_noise_scale', 0.02)
        super().__init__(*args, dn_cfg=dn_cfg, **kwargs)  # fills in classes, dims and queries
        self.dn_query_generator = RotatedCdnQueryGenerator(
            **dn_cfg, angle_noise_scale=angle_noise_scale)

    def _init_layers(self) -> None:
        self.positional_encoding = SinePositionalEncoding(**self.positional_encoding)
        self.encoder = ARSDETRTransformerEncoder(**self.encoder)
        self.decoder = ARSDETRTransformerDecoder(**self.decoder)
        self.embed_dims = self.encoder.embed_dims
        self.query_embedding = nn.Embedding(self.num_queries, self.embed_dims)
        if self.positional_encoding.num_feats * 2 != self.embed_dims:
            raise ValueError(f'positional_encoding.num_feats must be embed_dims / 2 = '
                             f'{self.embed_dims / 2}, got {self.positional_encoding.num_feats}')
        # zeros until init_weights draws it: uninitialised memory could hold NaN
        self.level_embed = nn.Parameter(torch.zeros(self.num_feature_levels, self.embed_dims))
        self.memory_trans_fc = nn.Linear(self.embed_dims, self.embed_dims)
        self.memory_trans_norm = nn.LayerNorm(self.embed_dims)

    def pre_decoder(self, memory: Tensor, memory_mask: Tensor, spatial_shapes: Tensor,
                    batch_data_samples: OptSampleList = None) -> Tuple[Dict]:
        """DINO's query selection with angles (:meth:`encoder_proposals`), then the queries
        (:meth:`queries_from_proposals`)."""
        proposals = self.encoder_proposals(memory, memory_mask, spatial_shapes)
        return self.queries_from_proposals(proposals, memory, batch_data_samples)

    def encoder_proposals(self, memory: Tensor, memory_mask: Tensor,
                          spatial_shapes: Tensor) -> Dict[str, Tensor]:
        """The top ``num_queries`` encoder proposals: their class logits, unactivated boxes, angle
        logits and features (the transformed memory the encoder heads read)."""
        head = self.bbox_head
        enc_layer = self.decoder.num_layers
        output_memory, output_proposals = self.gen_encoder_output_proposals(
            memory, memory_mask, spatial_shapes)
        enc_class = head.cls_branches[enc_layer](output_memory)
        enc_coord_unact = head.reg_branches[enc_layer](output_memory) + output_proposals
        enc_angle = head.angle_branches[enc_layer](output_memory)
        if self.num_queries > enc_class.shape[1]:
            raise ValueError(f'num_queries={self.num_queries} exceeds the {enc_class.shape[1]} '
                             'encoder tokens of this input: use fewer queries or larger images')
        topk = torch.topk(enc_class[..., 0], k=self.num_queries, dim=1)[1]

        def gather(values: Tensor) -> Tensor:
            return torch.gather(values, 1, topk[..., None].expand(-1, -1, values.shape[-1]))

        return dict(classes=gather(enc_class), coords_unact=gather(enc_coord_unact),
                    angles=gather(enc_angle), features=gather(output_memory))

    def queries_from_proposals(self, proposals: Dict[str, Tensor], memory: Tensor,
                               batch_data_samples: OptSampleList = None,
                               denoising: Optional[tuple] = None) -> Tuple[Dict]:
        """Decoder inputs from the proposals: their boxes and (decoded, detached) angles as the
        initial references; in training the denoising queries (``denoising``, a
        :class:`RotatedCdnQueryGenerator` output, or new ones) are prepended."""
        reference_points = proposals['coords_unact'].detach()
        reference_angles = self.bbox_head.angle_coder.decode(proposals['angles'].detach())
        query = self.query_embedding.weight[None].expand(memory.shape[0], -1, -1)
        dn_mask = dn_meta = None
        if self.training:
            dn_label, dn_box, dn_angle, dn_mask, dn_meta = \
                denoising or self.dn_query_generator(batch_data_samples)
            query = torch.cat([dn_label, query], dim=1)
            reference_points = torch.cat([dn_box, reference_points], dim=1)
            reference_angles = torch.cat([dn_angle, reference_angles], dim=1)
        decoder_inputs = dict(query=query, memory=memory,
                              reference_points=reference_points.sigmoid(),
                              reference_angles=reference_angles, dn_mask=dn_mask)
        head_inputs = dict(enc_outputs_class=proposals['classes'],
                           enc_outputs_coord=proposals['coords_unact'].sigmoid(),
                           enc_outputs_angle=proposals['angles'],
                           dn_meta=dn_meta) if self.training else dict()
        return decoder_inputs, head_inputs

    def forward_decoder(self, query: Tensor, memory: Tensor, memory_mask: Tensor,
                        reference_points: Tensor, reference_angles: Tensor,
                        spatial_shapes: Tensor, level_start_index: Tensor, valid_ratios: Tensor,
                        dn_mask: Optional[Tensor] = None, **kwargs) -> Dict:
        """The decoder with the head's box and angle branches; keeps the denoising label
        embedding in the graph when a batch has no object (DDP needs every parameter used)."""
        head = self.bbox_head
        hidden_states, references = self.decoder(
            query=query, value=memory, key_padding_mask=memory_mask, self_attn_mask=dn_mask,
            reference_points=reference_points, reference_angles=reference_angles,
            spatial_shapes=spatial_shapes, level_start_index=level_start_index,
            valid_ratios=valid_ratios, reg_branches=head.reg_branches,
            angle_branches=head.angle_branches, angle_coder=head.angle_coder, **kwargs)
        if self.training and query.shape[1] == self.num_queries:
            hidden_states = hidden_states + \
                self.dn_query_generator.label_embedding.weight[0, 0] * 0.0
        return dict(hidden_states=hidden_states, references=list(references))
