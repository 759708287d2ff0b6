"""Multi-scale deformable attention with ARS-DETR's rotated sampling and a kernel switch."""
import math
from functools import lru_cache
from typing import Optional

import torch
from mmcv.ops import MultiScaleDeformableAttention
from mmcv.ops.multi_scale_deform_attn import (MultiScaleDeformableAttnFunction,
                                              multi_scale_deformable_attn_pytorch)
from torch import Tensor
from torch.profiler import record_function

IMPLEMENTATIONS = ('auto', 'pytorch', 'cuda')
PROFILER_SCOPE = 'multi_scale_deformable_sampling'  # the sampling kernel's name in torch.profiler


@lru_cache(maxsize=None)
def mmcv_has_cuda_kernels() -> bool:
    """Whether this mmcv build compiled its ops for CUDA (a CPU-only build says 'not available')."""
    from mmcv.ops import get_compiling_cuda_version
    return get_compiling_cuda_version() != 'not available'


def attention_frame(boxes: Tensor, angles: Tensor) -> tuple:
    """The same box with its angle in [-pi/4, pi/4): w and h swapped for each odd quarter turn.

    ``boxes`` (..., 4) are (cx, cy, w, h), ``angles`` (...) radians. The polygon is unchanged; the
    rotation applied to the sampling offsets stays within a quarter turn (ARS-DETR).
    """
    quarter_turns = torch.floor((angles + math.pi / 4) / (math.pi / 2))
    turned = torch.remainder(quarter_turns, 2) == 1
    wrapped = angles - quarter_turns * (math.pi / 2)
    swapped = torch.cat([boxes[..., :2], boxes[..., 3:4], boxes[..., 2:3]], dim=-1)
    return torch.where(turned[..., None], swapped, boxes), wrapped


def rotated_sampling_locations(reference_boxes: Tensor, offsets: Tensor, angles: Tensor,
                               num_points: int) -> Tensor:
    """ARS-DETR's sampling locations ``ref_xy + R(theta) (offset / num_points * wh / 2)``.

    Args:
        reference_boxes: (bs, nq, levels, 4) normalised (cx, cy, w, h) per level.
        offsets: (bs, nq, heads, levels, points, 2) predicted offsets in the box's own frame.
        angles: (bs, nq) angle of each query's box (radians, le90: the box's width axis is
            (cos t, sin t) in image coordinates, x right and y down).
        num_points: sampling points per head and level.

    Returns:
        (bs, nq, heads, levels, points, 2) normalised (x, y) locations.
    """
    scaled = offsets / num_points * reference_boxes[:, :, None, :, None, 2:] * 0.5
    cos = torch.cos(angles)[:, :, None, None, None]
    sin = torch.sin(angles)[:, :, None, None, None]
    dx, dy = scaled[..., 0], scaled[..., 1]
    turned = torch.stack([cos * dx - sin * dy, sin * dx + cos * dy], dim=-1)
    return reference_boxes[:, :, None, :, None, :2] + turned


class RotatedMultiScaleDeformableAttention(MultiScaleDeformableAttention):
    """mmcv's multi-scale deformable attention whose box offsets turn with the query's angle.

    Given ``reference_angles`` and 4-d reference boxes, each box is first brought to its
    quarter-turn frame (:func:`attention_frame`) and the offsets, scaled by its half size, are
    rotated by its angle (:func:`rotated_sampling_locations`). Without angles it is mmcv's module
    exactly (the encoder's self-attention). Same parameters as mmcv's, plus:

    Args:
        impl: 'auto' runs mmcv's compiled kernel only on CUDA tensors when this mmcv build has CUDA
            kernels, and the pure-PyTorch ``grid_sample`` path otherwise; 'pytorch' always the
            latter; 'cuda' requires the kernel and says so when it is missing.
    """

    def __init__(self, *args, impl: str = 'auto', **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if impl not in IMPLEMENTATIONS:
            raise ValueError(f'impl must be one of {IMPLEMENTATIONS}, got {impl!r}')
        self.impl = impl

    def use_compiled_kernel(self, value: Tensor) -> bool:
        """Whether this call runs mmcv's compiled CUDA kernel (see ``impl``)."""
        if self.impl == 'pytorch':
            return False
        available = value.is_cuda and mmcv_has_cuda_kernels()
        if self.impl == 'cuda' and not available:
            raise RuntimeError(
                'impl="cuda" needs CUDA tensors and an mmcv built with CUDA ops (this mmcv: '
                f'compiled CUDA {"yes" if mmcv_has_cuda_kernels() else "no"}, tensors on '
                f'{value.device}); use impl="auto" or "pytorch"')
        return available

    def forward(self,
                query: Tensor,
                key: Optional[Tensor] = None,
                value: Optional[Tensor] = None,
                identity: Optional[Tensor] = None,
                query_pos: Optional[Tensor] = None,
                key_padding_mask: Optional[Tensor] = None,
                reference_points: Optional[Tensor] = None,
                spatial_shapes: Optional[Tensor] = None,
                level_start_index: Optional[Tensor] = None,
                reference_angles: Optional[Tensor] = None,
                **kwargs) -> Tensor:
        """mmcv's forward (same arguments) plus ``reference_angles`` (bs, num_query) in radians."""
        value = query if value is None else value
        identity = query if identity is None else identity
        if query_pos is not None:
            query = query + query_pos
        if not self.batch_first:
            query, value = query.permute(1, 0, 2), value.permute(1, 0, 2)
        bs, num_query, _ = query.shape
        num_value = value.shape[1]
        if int((spatial_shapes[:, 0] * spatial_shapes[:, 1]).sum()) != num_value:
            raise ValueError(f'spatial_shapes {spatial_shapes.tolist()} do not add up to the '
                             f'{num_value} values')
        value = self.value_proj(value)
        if key_padding_mask is not None:
            value = value.masked_fill(key_padding_mask[..., None], 0.0)
        value = value.view(bs, num_value, self.num_heads, -1)
        offsets = self.sampling_offsets(query).view(bs, num_query, self.num_heads,
                                                    self.num_levels, self.num_points, 2)
        weights = self.attention_weights(query).view(bs, num_query, self.num_heads,
                                                     self.num_levels * self.num_points)
        weights = weights.softmax(-1).view(bs, num_query, self.num_heads, self.num_levels,
                                           self.num_points)
        locations = self.sampling_locations(reference_points, offsets, spatial_shapes,
                                            reference_angles)
        with record_function(PROFILER_SCOPE):
            if self.use_compiled_kernel(value):
                output = MultiScaleDeformableAttnFunction.apply(value, spatial_shapes,
                                                                level_start_index, locations,
                                                                weights, self.im2col_step)
            else:
                output = multi_scale_deformable_attn_pytorch(value, spatial_shapes, locations,
                                                             weights)
        output = self.output_proj(output)
        if not self.batch_first:
            output = output.permute(1, 0, 2)
        return self.dropout(output) + identity

    def sampling_locations(self, reference_points: Tensor, offsets: Tensor,
                           spatial_shapes: Tensor, reference_angles: Optional[Tensor]) -> Tensor:
        """Normalised sampling locations (bs, nq, heads, levels, points, 2)."""
        if reference_points.shape[-1] == 2:
            if reference_angles is not None:
                raise ValueError('reference_angles need 4-d reference boxes (cx, cy, w, h)')
            normalizer = torch.stack([spatial_shapes[..., 1], spatial_shapes[..., 0]], -1)
            return (reference_points[:, :, None, :, None, :] +
                    offsets / normalizer[None, None, None, :, None, :])
        if reference_points.shape[-1] != 4:
            raise ValueError('reference_points must end in 2 (points) or 4 (boxes), got '
                             f'{reference_points.shape[-1]}')
        if reference_angles is None:
            return (reference_points[:, :, None, :, None, :2] + offsets / self.num_points *
                    reference_points[:, :, None, :, None, 2:] * 0.5)
        boxes, angles = attention_frame(reference_points, reference_angles[:, :, None])
        return rotated_sampling_locations(boxes, offsets, angles[..., 0], self.num_points)
