"""ARS-DETR's encoder and decoder: mmdet's Deformable-DETR / DINO layers with switchable and
rotated deformable attention, and a decoder that refines each query's angle layer by layer."""
from typing import Tuple

import torch
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.transformer import FFN, MultiheadAttention
from mmdet.models.layers import (DeformableDetrTransformerDecoderLayer,
                                 DeformableDetrTransformerEncoder,
                                 DeformableDetrTransformerEncoderLayer, DinoTransformerDecoder)
from mmdet.models.layers.transformer.utils import MLP, coordinate_to_encoding, inverse_sigmoid
from mmengine.model import BaseModule, ModuleList
from torch import Tensor, nn

from .attention import RotatedMultiScaleDeformableAttention


class ARSDETREncoderLayer(DeformableDetrTransformerEncoderLayer):
    """Deformable-DETR encoder layer whose self-attention follows the ``impl`` switch."""

    def _init_layers(self) -> None:
        self.self_attn = RotatedMultiScaleDeformableAttention(**self.self_attn_cfg)
        self.embed_dims = self.self_attn.embed_dims
        self.ffn = FFN(**self.ffn_cfg)
        self.norms = ModuleList(
            [build_norm_layer(self.norm_cfg, self.embed_dims)[1] for _ in range(2)])


class ARSDETRDecoderLayer(DeformableDetrTransformerDecoderLayer):
    """Deformable-DETR decoder layer whose cross-attention turns with the query's angle."""

    def _init_layers(self) -> None:
        self.self_attn = MultiheadAttention(**self.self_attn_cfg)
        self.cross_attn = RotatedMultiScaleDeformableAttention(**self.cross_attn_cfg)
        self.embed_dims = self.self_attn.embed_dims
        self.ffn = FFN(**self.ffn_cfg)
        self.norms = ModuleList(
            [build_norm_layer(self.norm_cfg, self.embed_dims)[1] for _ in range(3)])


class ARSDETRTransformerEncoder(DeformableDetrTransformerEncoder):
    """Deformable-DETR encoder of :class:`ARSDETREncoderLayer` (plain multi-scale attention)."""

    def _init_layers(self) -> None:
        self.layers = ModuleList(
            [ARSDETREncoderLayer(**self.layer_cfg) for _ in range(self.num_layers)])
        self.embed_dims = self.layers[0].embed_dims


class ARSDETRTransformerDecoder(DinoTransformerDecoder):
    """DINO's decoder (look-forward-twice box refinement) whose cross-attention samples in each
    query's rotated box; the angle of layer l + 1 is the decoded, detached angle that layer l's
    classifier predicts from its normalised output (the first from the encoder's proposals)."""

    def _init_layers(self) -> None:
        self.layers = ModuleList(
            [ARSDETRDecoderLayer(**self.layer_cfg) for _ in range(self.num_layers)])
        self.embed_dims = self.layers[0].embed_dims
        self.ref_point_head = MLP(self.embed_dims * 2, self.embed_dims, self.embed_dims, 2)
        self.norm = nn.LayerNorm(self.embed_dims)

    def forward(self, query: Tensor, value: Tensor, key_padding_mask: Tensor,
                self_attn_mask: Tensor, reference_points: Tensor, reference_angles: Tensor,
                spatial_shapes: Tensor, level_start_index: Tensor, valid_ratios: Tensor,
                reg_branches: nn.ModuleList, angle_branches: nn.ModuleList,
                angle_coder: BaseModule, **kwargs) -> Tuple[Tensor, Tensor]:
        """DINO's decoder forward plus ``reference_angles`` (bs, nq), the angle branches and coder.

        Returns:
            The normalised outputs of every layer (layers, bs, nq, dim) and the references
            (layers + 1, bs, nq, 4): the initial one, then each layer's undetached refinement.
        """
        intermediate = []
        references = [reference_points]
        for layer_id, layer in enumerate(self.layers):
            reference_input = reference_points[:, :, None] * torch.cat(
                [valid_ratios, valid_ratios], -1)[:, None]
            query_pos = self.ref_point_head(coordinate_to_encoding(
                reference_input[:, :, 0, :], num_feats=self.embed_dims // 2))
            query = layer(
                query,
                query_pos=query_pos,
                value=value,
                key_padding_mask=key_padding_mask,
                self_attn_mask=self_attn_mask,
                spatial_shapes=spatial_shapes,
                level_start_index=level_start_index,
                valid_ratios=valid_ratios,
                reference_points=reference_input,
                reference_angles=reference_angles,
                **kwargs)
            output = self.norm(query)
            refined = (reg_branches[layer_id](query) +
                       inverse_sigmoid(reference_points, eps=1e-3)).sigmoid()
            reference_points = refined.detach()
            reference_angles = angle_coder.decode(angle_branches[layer_id](output).detach())
            intermediate.append(output)
            references.append(refined)
        return torch.stack(intermediate), torch.stack(references)
