"""Hyperbolic similarity mask (HSM), IFKD section 3.3, eq. 9-11.

Per location, the teacher's and the adapted student's channel vectors are mapped into the Poincaré
ball of curvature ``c`` (``-c`` is the sectional curvature) and the mask is their geodesic distance.

FPN features have norms far above the ball's radius ``1/sqrt(c)``, so they cannot be used as
points of the ball directly (``artanh`` saturates and the mask is nearly constant). They are
*clipped* first (Guo et al., "Clipped Hyperbolic Classifiers", CVPR 2022: ``x <- min(1, r/|x|) x``)
and then mapped with the exponential map at the origin, which puts a vector of norm ``n`` at
norm ``tanh(sqrt(c) n) / sqrt(c)``, safely inside the ball for the default ``r = 1``.
The ball operations are geoopt's ``PoincareBall``; :func:`mobius_add` and :func:`poincare_distance`
are the paper's formulas written out, kept as a reference for the tests.
"""
from typing import List, Sequence

import geoopt
import torch
from mmengine.model import BaseModule
from torch import Tensor

from ...registry import register_model


def mobius_add(x: Tensor, y: Tensor, c: float, dim: int = -1) -> Tensor:
    """Möbius addition ``x (+)_c y`` (eq. 9; the paper's ``e`` is the curvature ``c``)."""
    xy = (x * y).sum(dim, keepdim=True)
    x2 = x.pow(2).sum(dim, keepdim=True)
    y2 = y.pow(2).sum(dim, keepdim=True)
    numerator = (1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y
    return numerator / (1 + 2 * c * xy + c ** 2 * x2 * y2)


def poincare_distance(x: Tensor, y: Tensor, c: float, dim: int = -1) -> Tensor:
    """Geodesic distance ``2/sqrt(c) artanh(sqrt(c) |(-x) (+)_c y|)`` (eq. 10), written out."""
    sqrt_c = c ** 0.5
    return 2 / sqrt_c * torch.atanh(sqrt_c * mobius_add(-x, y, c, dim).norm(dim=dim))


def clip_features(x: Tensor, radius: float, dim: int = 1) -> Tensor:
    """Feature clipping: scale each vector along ``dim`` to norm at most ``radius``."""
    norm = x.norm(dim=dim, keepdim=True).clamp_min(1e-12)
    return x * (radius / norm).clamp(max=1.0)


def to_poincare_ball(x: Tensor, c: float, clip_radius: float, dim: int = 1) -> Tensor:
    """Euclidean feature vectors along ``dim`` as points of the Poincaré ball (clip, expmap0)."""
    ball = geoopt.PoincareBall(c=c).to(x.device, x.dtype)
    return ball.expmap0(clip_features(x, clip_radius, dim), dim=dim)


def hyperbolic_distance(x: Tensor, y: Tensor, c: float, dim: int = 1) -> Tensor:
    """Geodesic distance of points of the ball along ``dim`` (eq. 10, by geoopt)."""
    return geoopt.PoincareBall(c=c).to(x.device, x.dtype).dist(x, y, dim=dim)


def hyperbolic_similarity_mask(teacher: Tensor, student: Tensor, c: float = 1.0,
                               clip_radius: float = 1.0, eps: float = 1e-6) -> Tensor:
    """``M_HSM`` of one level (eq. 11): (B, 1, H, W), detached, mean 1 over each image's H x W.

    ``teacher`` and ``student`` are (B, C, H, W) with equal C (the student already adapted).
    The normalisation is ``(d + eps) / (mean(d) + eps)``: mean exactly 1, and all ones when
    the two feature maps are equal everywhere.
    """
    if teacher.shape != student.shape:
        raise ValueError(f'HSM needs teacher and adapted student features of one shape, got '
                         f'{tuple(teacher.shape)} and {tuple(student.shape)}')
    with torch.no_grad():
        t = to_poincare_ball(teacher.detach().float(), c, clip_radius)
        s = to_poincare_ball(student.detach().float(), c, clip_radius)
        distance = hyperbolic_distance(t, s, c).unsqueeze(1)
        return (distance + eps) / (distance.mean(dim=(2, 3), keepdim=True) + eps)


@register_model
class HyperbolicSimilarityMask(BaseModule):
    """The hyperbolic similarity mask of every level (IFKD eq. 9-11); no parameters.

    Args:
        c: curvature of the Poincaré ball (eq. 9-10; ``c = 1`` is the paper's geodesic case).
        clip_radius: feature clipping radius ``r`` before the exponential map at the origin.
    """

    def __init__(self, c: float = 1.0, clip_radius: float = 1.0, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if c <= 0 or clip_radius <= 0:
            raise ValueError(f'HSM needs c > 0 and clip_radius > 0, got c={c}, '
                             f'clip_radius={clip_radius}')
        self.c = float(c)
        self.clip_radius = float(clip_radius)

    def forward(self, teacher: Sequence[Tensor], student: Sequence[Tensor]) -> List[Tensor]:
        """One (B, 1, H_l, W_l) mask per level, from teacher and adapted student features."""
        return [hyperbolic_similarity_mask(t, s, self.c, self.clip_radius)
                for t, s in zip(teacher, student)]
