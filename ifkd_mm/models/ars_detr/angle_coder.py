"""AR-CSL: circular smooth angle labels with ARS-DETR's aspect-ratio-aware window."""
import math

import torch
from mmrotate.models.task_modules.coders import CSLCoder
from mmrotate.registry import TASK_UTILS
from torch import Tensor


def aspect_ratio(widths: Tensor, heights: Tensor, eps: float = 1e-6) -> Tensor:
    """k = long side / short side (>= 1) of each box."""
    long_side = torch.maximum(widths, heights).clamp(min=eps)
    short_side = torch.minimum(widths, heights).clamp(min=eps)
    return long_side / short_side


def aspect_ratio_weight(ratios: Tensor) -> Tensor:
    """ARS-DETR's weight ``2k / (k + 1)`` of the angle loss and matching cost (1 for squares)."""
    return 2 * ratios / (ratios + 1)


def turned_rectangle_iou(ratios: Tensor, offsets: Tensor) -> Tensor:
    """IoU of a k:1 rectangle with its copy turned by ``offsets`` radians about its centre.

    Broadcasts ``ratios`` against ``offsets``. Closed form for a rectangle of sides k >= 1 and 1:
    beyond the critical angle ``2 atan(1 / k)`` the overlap is the rhombus where the two short-side
    strips cross, of area ``1 / sin d``; below it, the rectangle minus the four corner triangles cut
    off by its turned copy, ``k - tan d (L1^2 + L2^2)`` with ``L1 = (k - tan(d/2)) / 2`` and
    ``L2 = (1 - k tan(d/2)) / 2``. The offset is folded into [0, pi/2] (a rectangle is symmetric
    under a half turn and under reflection).
    """
    ratios, offsets = torch.broadcast_tensors(ratios.double(), offsets.double())
    d = torch.remainder(offsets, math.pi)
    d = torch.minimum(d, math.pi - d)
    critical = 2 * torch.atan(1 / ratios)
    wide = d >= critical
    d_small = torch.where(wide, torch.zeros_like(d), d)
    half_tan = torch.tan(d_small / 2)
    corners = torch.tan(d_small) * (((ratios - half_tan) / 2)**2 + ((1 - ratios * half_tan) / 2)**2)
    overlap_small = ratios - corners
    overlap_wide = 1 / torch.sin(torch.where(wide, d, torch.full_like(d, math.pi / 2)))
    overlap = torch.where(wide, overlap_wide, overlap_small)
    return overlap / (2 * ratios - overlap)


@TASK_UTILS.register_module()
class ARCSLCoder(CSLCoder):
    """Circular smooth label with the aspect-ratio window of ARS-DETR (AR-CSL), le90, 180 bins.

    The label of bin ``j`` for a box of aspect ratio k whose angle falls in bin ``t`` is the IoU of
    a k:1 rectangle with its copy turned by ``(j - t) * omega`` degrees (offsets wrapped into
    [-90, 90)), min-max normalised per box so that the target bin is 1 and the least overlapping
    offset 0 (90 degrees; 45 for a square). Decoding takes the centre of the arg-max bin (mmrotate's
    CSL decoding). Vectorised over boxes.

    Args:
        angle_version: only 'le90' (ARS-DETR's definition).
        omega: bin width in degrees (1 gives 180 bins).
        normalize: min-max normalise each box's label (ARS-DETR does).
    """

    def __init__(self, angle_version: str = 'le90', omega: float = 1, normalize: bool = True):
        super().__init__(angle_version, omega=omega, window='gaussian')
        if angle_version != 'le90':
            raise ValueError(f'ARCSLCoder supports angle_version="le90" only, got {angle_version!r}')
        if self.angle_range % omega:
            raise ValueError(f'omega={omega} must divide the 180-degree range into whole bins')
        self.window = 'aspect_ratio'
        self.normalize = normalize

    def target_bins(self, angles: Tensor) -> Tensor:
        """Index of the bin of each angle (radians, le90), shape like ``angles``."""
        degrees = torch.rad2deg(angles) + self.angle_offset
        return torch.floor(degrees / self.omega).long() % self.encode_size

    def encode(self, angle_targets: Tensor, ratios: Tensor) -> Tensor:
        """Soft labels (N, encode_size) of angles (N,) or (N, 1) for boxes of aspect ratio k (N,)."""
        angles = angle_targets.reshape(-1)
        ratios = ratios.reshape(-1).to(angles)
        if angles.numel() != ratios.numel():
            raise ValueError(f'{angles.numel()} angles but {ratios.numel()} aspect ratios')
        bins = torch.arange(self.encode_size, device=angles.device)
        offset_bins = bins[None, :] - self.target_bins(angles)[:, None]
        half = self.encode_size // 2
        offset_bins = torch.remainder(offset_bins + half, self.encode_size) - half
        offsets = torch.deg2rad(offset_bins.double() * self.omega)
        labels = turned_rectangle_iou(ratios[:, None], offsets)
        if self.normalize:
            lowest = labels.min(dim=1, keepdim=True).values
            spread = 1 - lowest
            labels = torch.where(spread > 1e-12, (labels - lowest) / spread.clamp(min=1e-12),
                                 torch.ones_like(labels))
        return labels.to(angle_targets.dtype if angle_targets.is_floating_point() else torch.float)
