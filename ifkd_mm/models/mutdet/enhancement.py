"""MutDet's mutual enhancement module (eq. 1): pseudo-box embeddings and encoder features attend
to each other, and the padded batch of pseudo-box embeddings it reads."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn.bricks.transformer import FFN
from mmengine.model import BaseModule
from torch import Tensor, nn


def pad_objects(embeddings: Sequence[Tensor], boxes: Sequence[Tensor],
                max_objects: int = 1000) -> Tuple[Tensor, Tensor, List[Tensor]]:
    """Batch the pseudo-box embeddings of several images, largest boxes first, at most
    ``max_objects`` per image (bounds the memory of images with thousands of SAM boxes; the public
    code also keeps at most 1000 boxes per image, in file order).

    Args:
        embeddings: per image, (n_i, D) object embeddings.
        boxes: per image, (n_i, 5) le90 boxes (cx, cy, w, h, t); the area w * h orders them, ties
            keep the input order.
        max_objects: the cap per image.

    Returns:
        objects: (bs, M, D) embeddings, zeros in the padded slots.
        object_mask: (bs, M) bool, True = padding.
        kept: per image, int64 indices into its inputs of the kept objects, in slot order.
        M is the largest kept count of the batch, at least 1 (a batch without objects gets one
        all-padding slot so that shapes stay valid).
    """
    if len(embeddings) != len(boxes):
        raise ValueError(f'pad_objects: {len(embeddings)} embeddings tensors but {len(boxes)} '
                         'boxes tensors (one of each per image)')
    if len(embeddings) == 0:
        raise ValueError('pad_objects: embeddings is empty (no images)')
    if max_objects < 1:
        raise ValueError(f'pad_objects: max_objects must be >= 1, got {max_objects}')
    dims = embeddings[0].shape[-1]
    kept = []
    for i, (image_embeddings, image_boxes) in enumerate(zip(embeddings, boxes)):
        if image_embeddings.dim() != 2 or image_embeddings.shape[1] != dims:
            raise ValueError(f'pad_objects: embeddings[{i}] must be (n, {dims}), '
                             f'got {tuple(image_embeddings.shape)}')
        if image_boxes.dim() != 2 or image_boxes.shape[1] != 5:
            raise ValueError(f'pad_objects: boxes[{i}] must be (n, 5) (cx, cy, w, h, t), '
                             f'got {tuple(image_boxes.shape)}')
        if image_boxes.shape[0] != image_embeddings.shape[0]:
            raise ValueError(f'pad_objects: image {i} has {image_boxes.shape[0]} boxes but '
                             f'{image_embeddings.shape[0]} embeddings')
        areas = image_boxes[:, 2] * image_boxes[:, 3]
        order = torch.sort(areas, descending=True, stable=True)[1]
        kept.append(order[:max_objects].to(device=image_embeddings.device, dtype=torch.int64))
    num_slots = max(1, max(len(indices) for indices in kept))
    reference = embeddings[0]
    objects = reference.new_zeros(len(embeddings), num_slots, dims)
    object_mask = torch.ones(len(embeddings), num_slots, dtype=torch.bool,
                             device=reference.device)
    for i, (image_embeddings, indices) in enumerate(zip(embeddings, kept)):
        objects[i, :len(indices)] = image_embeddings[indices]
        object_mask[i, :len(indices)] = False
    return objects, object_mask, kept


def check_padding_mask(name: str, mask: Tensor, shape: Tuple[int, ...]) -> None:
    """Raise a ValueError naming ``name`` unless it is a bool tensor of ``shape``."""
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool or tuple(mask.shape) != shape:
        got = f'{mask.dtype} {tuple(mask.shape)}' if isinstance(mask, Tensor) else type(mask)
        raise ValueError(f'{name} must be a bool tensor of shape {shape} (True = padding), '
                         f'got {got}')


class KeyMaskedAttention(nn.Module):
    """Multi-head attention through ``scaled_dot_product_attention`` with a per-image key padding
    mask, broadcast over heads and queries: memory O(queries * keys), never a (keys, keys) matrix
    unless queries and keys are the same set.

    A query whose image has no visible key gets an attention term of exactly zero (attention over
    an empty set), so a residual ``LN(x + term)`` reduces to ``LN(x)``. To keep every backend finite
    (a softmax over no key is 0/0), such an image attends to all of its padded keys and the term
    is then replaced by zeros; no gradient reaches those keys. (torch 2.14's CPU kernels already
    return zeros there, but other versions and CUDA kernels have returned NaN: pytorch/pytorch
    issues 103963 and 110213.)
    """

    def __init__(self, embed_dims: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if embed_dims % num_heads != 0:
            raise ValueError(f'embed_dims={embed_dims} is not divisible by num_heads={num_heads}')
        self.num_heads = num_heads
        self.dropout = dropout
        self.query_proj = nn.Linear(embed_dims, embed_dims)
        self.key_proj = nn.Linear(embed_dims, embed_dims)
        self.value_proj = nn.Linear(embed_dims, embed_dims)
        self.out_proj = nn.Linear(embed_dims, embed_dims)

    def split_heads(self, x: Tensor) -> Tensor:
        """(bs, n, C) -> (bs, heads, n, C / heads)."""
        bs, num, dims = x.shape
        return x.view(bs, num, self.num_heads, dims // self.num_heads).transpose(1, 2)

    def forward(self, query: Tensor, key: Tensor, key_padding_mask: Optional[Tensor]) -> Tensor:
        """``query`` (bs, nq, C) attends to ``key`` (bs, nk, C), which also gives the values;
        ``key_padding_mask`` (bs, nk) bool, True = padding, or None. Returns (bs, nq, C)."""
        attn_mask = None
        keyless = None
        if key_padding_mask is not None:
            keyless = key_padding_mask.all(dim=1)
            visible = ~key_padding_mask | keyless[:, None]
            attn_mask = visible[:, None, None, :]
        attended = F.scaled_dot_product_attention(
            self.split_heads(self.query_proj(query)), self.split_heads(self.key_proj(key)),
            self.split_heads(self.value_proj(key)), attn_mask=attn_mask,
            dropout_p=self.dropout if self.training else 0.0)
        term = self.out_proj(attended.transpose(1, 2).flatten(2))
        if keyless is not None:
            term = term.masked_fill(keyless[:, None, None], 0.0)
        return term


class MutualEnhancementLayer(BaseModule):
    """One layer of eq. 1 (post-norm, no positional encoding, as the public code)::

        O'      = LN(MHSA(O_i) + O_i)
        O''     = LN(MHCA(O', F_i) + O')
        O_{i+1} = LN(MLP(O'') + O'')
        F_{i+1} = LN(MHCA(F_i, O_{i+1}) + F_i)
    """

    def __init__(self, embed_dims: int, num_heads: int, feedforward_channels: int,
                 dropout: float) -> None:
        super().__init__()
        self.object_self_attn = KeyMaskedAttention(embed_dims, num_heads, dropout)
        self.object_to_feature_attn = KeyMaskedAttention(embed_dims, num_heads, dropout)
        self.ffn = FFN(embed_dims, feedforward_channels, ffn_drop=dropout,
                       act_cfg=dict(type='ReLU', inplace=True))
        self.feature_to_object_attn = KeyMaskedAttention(embed_dims, num_heads, dropout)
        self.norms = nn.ModuleList(nn.LayerNorm(embed_dims) for _ in range(4))

    def forward(self, features: Tensor, feature_mask: Optional[Tensor], objects: Tensor,
                object_mask: Tensor) -> Tuple[Tensor, Tensor]:
        """(F_i, O_i) -> (F_{i+1}, O_{i+1}); the masks are True at padding."""
        objects = self.norms[0](objects + self.object_self_attn(objects, objects, object_mask))
        objects = self.norms[1](
            objects + self.object_to_feature_attn(objects, features, feature_mask))
        objects = self.norms[2](self.ffn(objects))
        features = self.norms[3](
            features + self.feature_to_object_attn(features, objects, object_mask))
        return features, objects


class MutualEnhancementModule(BaseModule):
    """MutDet's mutual enhancement module (eq. 1): ``num_layers`` layers of two-way attention
    between the pseudo-box embeddings O and the encoder features F.

    Before the layers the encoder memory goes through Linear + LayerNorm (public code; the paper
    does not say) and the embeddings through a Linear when ``object_dims != embed_dims``. The public
    code runs the module image by image; here the batch is padded and masked, which gives the same
    result for the real slots. Padded object slots are never attended to and come back as zeros;
    padded feature positions are never attended to and are updated like the others. An image
    without objects gets a zero feature-update attention term, so each layer gives
    ``F_{i+1} = LN(F_i)`` for it (no NaN).

    Args:
        embed_dims: C of the encoder features and of the layers.
        object_dims: D of the pseudo-box embeddings.
        num_layers: enhancement layers (3 in the paper).
        num_heads: attention heads (8).
        feedforward_channels: hidden width of the object MLP (2048), ReLU.
        dropout: attention-weight and MLP dropout.
        init_cfg: mmengine initialisation config.
    """

    def __init__(self, embed_dims: int = 256, object_dims: int = 256, num_layers: int = 3,
                 num_heads: int = 8, feedforward_channels: int = 2048, dropout: float = 0.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.embed_dims = embed_dims
        self.object_dims = object_dims
        self.memory_proj = nn.Linear(embed_dims, embed_dims)
        self.memory_norm = nn.LayerNorm(embed_dims)
        self.object_proj = (nn.Identity() if object_dims == embed_dims
                            else nn.Linear(object_dims, embed_dims))
        self.layers = nn.ModuleList(
            MutualEnhancementLayer(embed_dims, num_heads, feedforward_channels, dropout)
            for _ in range(num_layers))

    def init_weights(self) -> None:
        """Xavier-uniform weight matrices, as mmdet's DETR transformers; ``init_cfg``, if given,
        is applied afterwards and wins."""
        for param in self.parameters():
            if param.dim() > 1:
                nn.init.xavier_uniform_(param)
        super().init_weights()

    def check_inputs(self, memory: Tensor, memory_mask: Optional[Tensor], objects: Tensor,
                     object_mask: Tensor) -> None:
        """Raise a ValueError naming the input whose shape or type does not fit."""
        if memory.dim() != 3 or memory.shape[2] != self.embed_dims:
            raise ValueError(f'memory must be (bs, L, {self.embed_dims}), '
                             f'got {tuple(memory.shape)}')
        bs, num_features = memory.shape[:2]
        if objects.dim() != 3 or objects.shape[0] != bs or objects.shape[2] != self.object_dims:
            raise ValueError(f'objects must be (bs={bs}, M, {self.object_dims}), '
                             f'got {tuple(objects.shape)}')
        if memory_mask is not None:
            check_padding_mask('memory_mask', memory_mask, (bs, num_features))
        check_padding_mask('object_mask', object_mask, tuple(objects.shape[:2]))

    def forward(self, memory: Tensor, memory_mask: Optional[Tensor], objects: Tensor,
                object_mask: Tensor) -> Tuple[Tensor, Tensor]:
        """Enhance the encoder memory and the pseudo-box embeddings.

        Args:
            memory: (bs, L, C) encoder features.
            memory_mask: (bs, L) bool, True = padding, or None.
            objects: (bs, M, object_dims) pseudo-box embeddings (see :func:`pad_objects`).
            object_mask: (bs, M) bool, True = padding.

        Returns:
            (bs, L, C) enhanced features F_enh and (bs, M, C) enhanced embeddings O_enh (zeros in
            the padded slots).
        """
        self.check_inputs(memory, memory_mask, objects, object_mask)
        features = self.memory_norm(self.memory_proj(memory))
        objects = self.object_proj(objects)
        for layer in self.layers:
            features, objects = layer(features, memory_mask, objects, object_mask)
        return features, objects.masked_fill(object_mask[..., None], 0.0)
