"""Frequency domain reconstruction (FDR), IFKD section 3.2, eq. 3-8 and Algorithm 1.

For a feature map ``f`` (B, C, H, W): 2-D FFT over (H, W) per channel, shifted so that the zero
frequency sits at index ``(H // 2, W // 2)`` (``torch.fft.fftshift``); a square low-pass window of
ratio ``r`` splits the spectrum into ``F_l`` and ``F_h``; the low-pass features
``f_l = real(iFFT(F_l))`` are masked by ``M_FRS`` (the teacher's max class probability per
location, detached), taken back to frequency and added to ``F_h``; the sum is multiplied by the
filter ``W_filter`` and transformed back (real part).

``W_filter`` (eq. 8). The paper learns it jointly with the student; the public code learns one
unbounded complex gain per channel, applied after the inverse FFT. Trained only by the
distillation loss and applied to teacher and student alike, any such filter is rewarded for
hiding the teacher-student difference: it shrinks to zero, or (at unit mean magnitude) turns odd,
since the odd part ``(W(k) - W(-k)) / 2`` of a filter vanishes from ``real(iFFT)``, or (real,
symmetric, non-negative, unit mean) moves its weight to the frequencies where teacher and
student agree. Here it is a *bounded gain*: a real, symmetric filter
``W(k) = 1 + b tanh(w(k))``, ``W(k) = W(-k)``, with ``0 <= b < 1`` (``gain_bound``, 0.5).
Because it is real and symmetric the filtered spectrum of a real map stays Hermitian and
``real(iFFT)`` discards nothing, so by Parseval the loss of any teacher-student pair lies
between ``(1 - b)^2`` and ``(1 + b)^2`` times its unfiltered value (exactly so without the HSM
mask, which weighs locations, not frequencies): training the filter can reweight frequencies by
at most ``(1 + b) / (1 - b)`` (3 at ``b = 0.5``) and never lower the loss below a quarter of its
value with the identity filter (``w = 0``, the initial state). A bound rather than another
objective: the paper gives the filter no objective of its own, and the bound keeps it learnable
as in the paper while capping what it can hide.
``learnable=False`` freezes it (at the identity unless ``raw_gains`` are loaded).
Each level keeps its ``w`` on a (C, G, G) grid, resized bilinearly to the level's (H, W) (level
sizes change with the image) and then symmetrised on the centred grid.
"""
import random
from typing import List, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from ...registry import register_model


def full_precision(x: Tensor) -> Tensor:
    """``x`` as float32, or float64 if it is that already (half precision is too coarse here)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def low_pass_window(height: int, width: int, ratio: float,
                    device: torch.device = None) -> Tensor:
    """``M_binary`` (eq. 4), (H, W): 1 where ``max(|u - H//2|, |v - W//2|) <= r min(H, W) / 2``."""
    u = (torch.arange(height, device=device) - height // 2).abs()
    v = (torch.arange(width, device=device) - width // 2).abs()
    distance = torch.maximum(u[:, None], v[None, :])
    return (distance <= ratio * min(height, width) / 2).float()


def spectrum(feature: Tensor) -> Tensor:
    """Centred 2-D spectrum over the last two axes (eq. 3, then fftshift)."""
    return torch.fft.fftshift(torch.fft.fft2(full_precision(feature)), dim=(-2, -1))


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
    return full_precision(cls_score.detach()).sigmoid().amax(dim=1, keepdim=True)


def mirror_frequencies(values: Tensor) -> Tensor:
    """``x(-k)`` of a map ``x(k)`` on the centred grid of the last two axes.

    Index ``i`` holds frequency ``k = i - n // 2``, so ``-k`` sits at ``(2 (n // 2) - i) mod n``:
    a flip for odd ``n``; for even ``n`` a flip rolled by one (the Nyquist row ``-n/2`` is its
    own mirror).
    """
    for dim in (-2, -1):
        values = values.flip(dim)
        if values.shape[dim] % 2 == 0:
            values = values.roll(1, dim)
    return values


def bounded_gain(raw_gain: Tensor, size: Tuple[int, int], bound: float) -> Tensor:
    """``W_filter`` of a level, (C, H, W): ``1 + bound tanh(w)`` with ``w`` symmetric in ``k``.

    ``raw_gain`` (C, G, G) is resized bilinearly to ``size`` and symmetrised,
    ``w <- (w(k) + w(-k)) / 2``, on the centred grid.
    """
    resized = F.interpolate(raw_gain[None], size=size, mode='bilinear', align_corners=False)[0]
    symmetric = (resized + mirror_frequencies(resized)) / 2
    return 1 + bound * torch.tanh(symmetric)


def half_spectrum(centred: Tensor) -> Tensor:
    """A map on the centred (H, W) frequency grid in ``rfft2``'s layout, (..., H, W // 2 + 1).

    Only for maps symmetric in ``k`` (``w(k) = w(-k)``, as ``M_binary`` and ``W_filter`` are):
    their product with the spectrum of a real map is again Hermitian, so the half spectrum holds
    all of it.
    """
    return torch.fft.ifftshift(centred, dim=(-2, -1))[..., :centred.shape[-1] // 2 + 1]


def band_basis(mask: Tensor) -> Tensor:
    """Orthonormal real basis (n, k) of the length-``n`` signals whose centred spectrum lies in
    ``mask``, a (n,) 0/1 mask on the centred grid that is symmetric, ``mask(k) = mask(-k)``.

    Columns, float64: ``1 / sqrt(n)``; ``sqrt(2 / n) cos(2 pi k x / n)`` and
    ``sqrt(2 / n) sin(2 pi k x / n)`` for each kept ``0 < k < n / 2``; ``(-1)^x / sqrt(n)`` if
    the Nyquist frequency of an even ``n`` is kept. ``U U^T`` is the band's projection
    ``real(iFFT(mask FFT(.)))``.
    """
    n = mask.numel()
    if not torch.equal(mask, mirror_frequencies(mask[None])[0]):
        raise ValueError(f'band_basis needs a mask symmetric in the frequency, got {mask.tolist()}')
    frequencies = torch.nonzero(mask).flatten() - n // 2
    positive = frequencies[(frequencies > 0) & (2 * frequencies < n)].double()
    x = torch.arange(n, dtype=torch.float64, device=mask.device)
    phase = 2 * torch.pi * x[:, None] * positive[None, :] / n
    columns = [torch.cos(phase) * (2 / n) ** 0.5, torch.sin(phase) * (2 / n) ** 0.5]
    if (frequencies == 0).any():
        columns.insert(0, torch.full((n, 1), n ** -0.5, dtype=torch.float64, device=mask.device))
    if n % 2 == 0 and (frequencies == -(n // 2)).any():
        columns.append((1 - 2 * (x % 2))[:, None] * n ** -0.5)
    return torch.cat(columns, dim=1)


def low_band(feature: Tensor, window: Tensor) -> Tensor:
    """``f_l = real(iFFT(M_binary FFT(f)))`` of (..., H, W) features (eq. 5, 7).

    ``M_binary`` (eq. 4) is the outer product of one band per axis, so ``f_l`` is the product of
    the two axes' projections, ``U_H U_H^T f U_W U_W^T`` (:func:`band_basis`): thin matrix
    products in place of an FFT round trip.
    """
    rows, cols = window.amax(dim=1), window.amax(dim=0)
    if not torch.equal(window, rows[:, None] * cols[None, :]):
        raise ValueError('low_band needs a window that is a product of one band per axis, as '
                         'low_pass_window is')
    u_h, u_w = band_basis(rows).to(feature.dtype), band_basis(cols).to(feature.dtype)
    return u_h @ ((u_h.T @ feature @ u_w) @ u_w.T)


def frequency_reconstruct(feature: Tensor, window: Tensor, frs: Tensor,
                          weight: Union[Tensor, float]) -> Tensor:
    """``phi_FDR`` of one feature map (Algorithm 1, eq. 5-8).

    Eq. 6-8 add the high band ``F_h = FFT(f) - FFT(f_l)`` to ``FFT(f_l M_FRS)``, which is
    ``FFT(f - (1 - M_FRS) f_l)``; so ``phi_FDR(f) = iFFT(W_filter FFT(f - (1 - M_FRS) f_l))``
    with ``f_l`` of :func:`low_band`: one FFT round trip, with real-input FFTs (the filter is
    symmetric, :func:`half_spectrum`). It is linear in ``f`` for a fixed window, ``M_FRS`` and
    filter.

    Args:
        feature: (B, C, H, W).
        window: ``M_binary`` (H, W) of :func:`low_pass_window`.
        frs: ``M_FRS`` (B, 1, H, W) of :func:`frs_mask`.
        weight: the filter ``W_filter`` on the centred spectrum, symmetric in ``k`` and
            broadcastable to (B, C, H, W), or a number.
    """
    feature = full_precision(feature)
    reweighted = torch.addcmul(feature, frs.to(feature.dtype) - 1, low_band(feature, window))
    if isinstance(weight, Tensor) and weight.dim() >= 2:
        weight = half_spectrum(weight)
    return torch.fft.irfft2(torch.fft.rfft2(reweighted) * weight, s=feature.shape[-2:])


@register_model
class FrequencyDomainReconstruction(BaseModule):
    """``phi_FDR`` of every level, applied with one ratio and one filter to teacher and student.

    Args:
        channels: channels of the features it reconstructs (the teacher's FPN channels).
        num_levels: number of FPN levels, one filter each.
        ratio: window ratio ``r`` of eq. 4 in eval mode (0.1 as in the public code).
        ratio_range: ``(low, high)``; in training ``r`` is drawn uniformly from it once per call
            (shared by all levels, the teacher and the student); mean 0.1 by default.
        filter_size: side G of each level's (C, G, G) grid of raw gains ``w``.
        gain_bound: ``b`` of ``W = 1 + b tanh(w)``, in [0, 1): the filter keeps at least
            ``(1 - b)^2`` of the unfiltered loss (module docstring); 0.5 keeps a quarter.
        learnable: False freezes the filter (the identity unless ``raw_gains`` are loaded).
    """

    def __init__(self, channels: int, num_levels: int = 5, ratio: float = 0.1,
                 ratio_range: Tuple[float, float] = (0.0, 0.2), filter_size: int = 16,
                 gain_bound: float = 0.5, learnable: bool = True, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        low, high = ratio_range
        if not 0 <= low <= high or ratio < 0:
            raise ValueError(f'FDR needs 0 <= ratio_range[0] <= ratio_range[1] and ratio >= 0, '
                             f'got ratio={ratio}, ratio_range={ratio_range}')
        if not 0 <= gain_bound < 1:
            raise ValueError(f'FDR needs 0 <= gain_bound < 1 (a gain in (1 - b, 1 + b) that '
                             f'cannot reach 0), got gain_bound={gain_bound}')
        self.ratio = float(ratio)
        self.ratio_range = (float(low), float(high))
        self.num_levels = num_levels
        self.gain_bound = float(gain_bound)
        self.raw_gains = nn.Parameter(
            torch.zeros(num_levels, channels, filter_size, filter_size),
            requires_grad=learnable)

    def draw_ratio(self) -> float:
        """The window ratio of this step: random in training, fixed in eval."""
        return random.uniform(*self.ratio_range) if self.training else self.ratio

    def level_filter(self, level: int, size: Tuple[int, int]) -> Tensor:
        """``W_filter`` of a level at ``size``, (C, H, W)."""
        return bounded_gain(self.raw_gains[level], size, self.gain_bound)

    def forward(self, teacher: Sequence[Tensor], student: Sequence[Tensor],
                frs: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
        """Reconstructed (teacher, student) levels; ``frs`` is ``M_FRS`` per level."""
        self.check_levels(teacher, student, frs)
        ratio = self.draw_ratio()
        out_teacher, out_student = [], []
        for level, (t, s, m) in enumerate(zip(teacher, student, frs)):
            window, weight = self.level_operators(level, t, ratio)
            out_teacher.append(frequency_reconstruct(t, window, m, weight))
            out_student.append(frequency_reconstruct(s, window, m, weight))
        return out_teacher, out_student

    def difference(self, teacher: Sequence[Tensor], student: Sequence[Tensor],
                   frs: Sequence[Tensor]) -> List[Tensor]:
        """``phi_FDR(T) - phi_FDR(S)`` of every level in one pass, as ``phi_FDR(T - S)``
        (:func:`frequency_reconstruct` is linear for a fixed window, ``M_FRS`` and filter)."""
        self.check_levels(teacher, student, frs)
        ratio = self.draw_ratio()
        differences = []
        for level, (t, s, m) in enumerate(zip(teacher, student, frs)):
            window, weight = self.level_operators(level, t, ratio)
            differences.append(frequency_reconstruct(t - s, window, m, weight))
        return differences

    def check_levels(self, teacher: Sequence[Tensor], student: Sequence[Tensor],
                     frs: Sequence[Tensor]) -> None:
        if not len(teacher) == len(student) == len(frs) == self.num_levels:
            raise ValueError(f'FDR has {self.num_levels} level filters but got {len(teacher)} '
                             f'teacher, {len(student)} student and {len(frs)} M_FRS levels')

    def level_operators(self, level: int, feature: Tensor, ratio: float) -> Tuple[Tensor, Tensor]:
        """``M_binary`` (H, W) and ``W_filter`` (C, H, W) of a level at ``feature``'s size."""
        size = tuple(feature.shape[-2:])
        return (low_pass_window(*size, ratio, device=feature.device),
                self.level_filter(level, size))
