"""Frequency domain reconstruction (FDR), IFKD section 3.2, eq. 3-8 and Algorithm 1.

For a feature map ``f`` (B, C, H, W): 2-D FFT over (H, W) per channel, shifted so that the zero
frequency sits at index ``(H // 2, W // 2)`` (``torch.fft.fftshift``); a square low-pass window of
ratio ``r`` splits the spectrum into ``F_l`` and ``F_h``; the low-pass features
``f_l = real(iFFT(F_l))`` are masked by ``M_FRS`` (the teacher's max class probability per
location, detached), taken back to frequency and added to ``F_h``; the sum is multiplied by the
learnable filter ``W_filter`` and transformed back (real part).

``W_filter`` (eq. 8) cannot be a (C, H, W) tensor because level sizes change with the image
size: each level has a (C, G, G) filter over a fixed centred frequency grid, bilinearly resized
to the level's (H, W). The filter is applied to teacher and student alike and trained only by the
distillation loss, which could shrink it to zero and make the loss vanish; it is therefore used
normalised to unit mean magnitude, ``W / mean(|W|)`` (mean over the level's C x H x W).
"""
import random
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from ...registry import register_model


def low_pass_window(height: int, width: int, ratio: float,
                    device: torch.device = None) -> Tensor:
    """``M_binary`` (eq. 4), (H, W): 1 where ``max(|u - H//2|, |v - W//2|) <= r min(H, W) / 2``."""
    u = (torch.arange(height, device=device) - height // 2).abs()
    v = (torch.arange(width, device=device) - width // 2).abs()
    distance = torch.maximum(u[:, None], v[None, :])
    return (distance <= ratio * min(height, width) / 2).float()


def spectrum(feature: Tensor) -> Tensor:
    """Centred 2-D spectrum over the last two axes (eq. 3, then fftshift)."""
    return torch.fft.fftshift(torch.fft.fft2(feature.float()), dim=(-2, -1))


def inverse_spectrum(spec: Tensor) -> Tensor:
    """Real part of the inverse of :func:`spectrum`."""
    return torch.fft.ifft2(torch.fft.ifftshift(spec, dim=(-2, -1))).real


def split_frequencies(feature: Tensor, window: Tensor) -> Tuple[Tensor, Tensor]:
    """Low- and high-frequency parts of ``feature`` in the spatial domain (eq. 5-7)."""
    spec = spectrum(feature)
    return inverse_spectrum(spec * window), inverse_spectrum(spec * (1 - window))


def frs_mask(cls_score: Tensor) -> Tensor:
    """``M_FRS`` of one level: max over classes of the sigmoid class scores, (B, 1, H, W), detached.

    ``cls_score`` is the dense head's (B, A*K, H, W) (A anchors, K classes; the RPN's (B, A, H, W)
    objectness for two-stage detectors): the max over all A*K channels is the max over A and K.
    """
    return cls_score.detach().float().sigmoid().amax(dim=1, keepdim=True)


def normalized_filter(weight: Tensor, size: Tuple[int, int]) -> Tensor:
    """A (C, G, G) frequency filter resized to ``size`` and scaled to unit mean magnitude."""
    resized = F.interpolate(weight[None], size=size, mode='bilinear', align_corners=False)[0]
    return resized / resized.abs().mean().clamp_min(1e-12)


def frequency_reconstruct(feature: Tensor, window: Tensor, frs: Tensor, weight: Tensor) -> Tensor:
    """``phi_FDR`` of one feature map (Algorithm 1, eq. 5-8).

    Args:
        feature: (B, C, H, W).
        window: ``M_binary`` (H, W) of :func:`low_pass_window`.
        frs: ``M_FRS`` (B, 1, H, W) of :func:`frs_mask`.
        weight: the filter ``W_filter`` on the centred spectrum, broadcastable to (B, C, H, W).
    """
    spec = spectrum(feature)
    low = inverse_spectrum(spec * window)                        # eq. 5, 7: f_l
    high_spec = spec * (1 - window)                              # eq. 6: F_h
    filtered = (high_spec + spectrum(low * frs)) * weight        # eq. 8
    return inverse_spectrum(filtered)


@register_model
class FrequencyDomainReconstruction(BaseModule):
    """``phi_FDR`` of every level, applied with one ratio and one filter to teacher and student.

    Args:
        channels: channels of the features it reconstructs (the teacher's FPN channels).
        num_levels: number of FPN levels, one learnable filter each.
        ratio: window ratio ``r`` of eq. 4 in eval mode (0.1 as in the public code).
        ratio_range: ``(low, high)``; in training ``r`` is drawn uniformly from it once per call
            (shared by all levels, the teacher and the student); mean 0.1 by default.
        filter_size: side G of each level's (C, G, G) frequency grid of ``W_filter``.
    """

    def __init__(self, channels: int, num_levels: int = 5, ratio: float = 0.1,
                 ratio_range: Tuple[float, float] = (0.0, 0.2), filter_size: int = 16,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        low, high = ratio_range
        if not 0 <= low <= high or ratio < 0:
            raise ValueError(f'FDR needs 0 <= ratio_range[0] <= ratio_range[1] and ratio >= 0, '
                             f'got ratio={ratio}, ratio_range={ratio_range}')
        self.ratio = float(ratio)
        self.ratio_range = (float(low), float(high))
        self.num_levels = num_levels
        self.filters = nn.Parameter(torch.ones(num_levels, channels, filter_size, filter_size))

    def draw_ratio(self) -> float:
        """The window ratio of this step: random in training, fixed in eval."""
        return random.uniform(*self.ratio_range) if self.training else self.ratio

    def level_filter(self, level: int, size: Tuple[int, int]) -> Tensor:
        """The normalised ``W_filter`` of a level at ``size``, (C, H, W)."""
        return normalized_filter(self.filters[level], size)

    def forward(self, teacher: Sequence[Tensor], student: Sequence[Tensor],
                frs: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
        """Reconstructed (teacher, student) levels; ``frs`` is ``M_FRS`` per level."""
        if not len(teacher) == len(student) == len(frs) == self.num_levels:
            raise ValueError(f'FDR has {self.num_levels} level filters but got {len(teacher)} '
                             f'teacher, {len(student)} student and {len(frs)} M_FRS levels')
        ratio = self.draw_ratio()
        out_teacher, out_student = [], []
        for level, (t, s, m) in enumerate(zip(teacher, student, frs)):
            size = tuple(t.shape[-2:])
            window = low_pass_window(*size, ratio, device=t.device)
            weight = self.level_filter(level, size)
            out_teacher.append(frequency_reconstruct(t, window, m, weight))
            out_student.append(frequency_reconstruct(s, window, m, weight))
        return out_teacher, out_student
