"""Hyperbolic similarity mask (HSM), IFKD section 3.3, eq. 9-11.

Per location, the teacher's and the adapted student's channel vectors are mapped into the Poincaré
ball of curvature ``c`` (``-c`` is the sectional curvature) and the mask is their geodesic distance
``d_c(x, y) = 2/sqrt(c) artanh(sqrt(c) |(-x) (+)_c y|)`` (eq. 10, Möbius addition of eq. 9).

Scale. FPN vectors have norms around 16, far above the ball's radius ``1/sqrt(c)``: used as they
are, ``artanh`` saturates and the mask is nearly constant (the public code's clamp); clipped to
radius 1 (Guo et al., "Clipped Hyperbolic Classifiers", CVPR 2022) every vector lands on one
sphere and the mask sees only the angle between teacher and student, not their magnitudes.
Here each level of each image is first divided by the teacher's mean channel-vector norm over
the level's locations (detached; the same factor for teacher and student), then clipped at
``clip_radius`` in those units, then mapped with the exponential map at the origin. Along a ray
the map keeps distances exactly (``d(exp0(a u), exp0(b u)) = 2 |a - b|`` for a unit ``u``), so
a student ``s`` times the teacher is ``2 |s - 1|`` teacher norms away from it.
The clip only guards the ball's boundary: geoopt clamps the argument of ``artanh`` at
``1 - 1e-7``, so distances saturate at ``16.8 / sqrt(c)``, and any two points within radius ``r``
are at most ``4 r`` apart; the default ``r = 4 / sqrt(c)`` (4 teacher norms at ``c = 1``) keeps
every distance below the clamp. The distances are computed in
float64 (float32's boundary margin in geoopt, ``4e-3``, is passed at about 3 teacher norms), with
the curvature given to geoopt as a float64 tensor (a Python float is stored in float32).
The ball operations are geoopt's ``PoincareBall``. They run on each location's pair written in
two coordinates (:func:`plane_coordinates`): clipping, the exponential map at the origin and the
distance depend only on the two norms and the angle, which an orthonormal basis of the plane
spanned by the pair keeps, so the ball sees two coordinates per location instead of C. Every
ball operation is per location: all levels' locations go through it in one call, as (B, N, 2)
tensors with the coordinates last (torch reduced a strided axis of size 2 27 times slower here).
"""
from typing import List, Optional, Sequence, Tuple

import geoopt
import torch
from mmengine.model import BaseModule
from torch import Tensor

from ...registry import register_model


def teacher_norm_scale(teacher: Tensor) -> Tensor:
    """Per image, the mean over locations of the teacher's vector norm: (B, 1, 1) of the
    (B, N, D) vectors of N locations."""
    return teacher.norm(dim=2, keepdim=True).mean(dim=1, keepdim=True)


def clip_features(x: Tensor, radius: float, dim: int = 1) -> Tensor:
    """Feature clipping: scale each vector along ``dim`` to norm at most ``radius``."""
    norm = x.norm(dim=dim, keepdim=True).clamp_min(1e-12)
    return x * (radius / norm).clamp(max=1.0)


def poincare_ball(c: float, like: Tensor) -> geoopt.PoincareBall:
    """geoopt's ball of curvature ``c``, with ``c`` exact in the dtype of ``like``."""
    return geoopt.PoincareBall(c=torch.tensor(c, dtype=like.dtype, device=like.device))


def default_clip_radius(c: float) -> float:
    """``4 / sqrt(c)``: any two clipped points stay below geoopt's ``artanh`` clamp."""
    return 4 / c ** 0.5


def to_poincare_ball(x: Tensor, c: float, clip_radius: float, dim: int = 1) -> Tensor:
    """Euclidean feature vectors along ``dim`` as points of the Poincaré ball (clip, expmap0)."""
    return poincare_ball(c, x).expmap0(clip_features(x, clip_radius, dim), dim=dim)


def hyperbolic_distance(x: Tensor, y: Tensor, c: float, dim: int = 1) -> Tensor:
    """Geodesic distance of points of the ball along ``dim`` (eq. 10, by geoopt)."""
    return poincare_ball(c, x).dist(x, y, dim=dim)


def plane_coordinates(teacher: Tensor, student: Tensor) -> Tuple[Tensor, Tensor]:
    """Each location's teacher and student vectors (along dim 1) in an orthonormal basis of the
    plane they span, (B, 2, H, W) each: the teacher as ``(|t|, 0)``, the student as
    ``(<s, t>/|t|, |s - <s, t> t / |t|^2|)`` (``(0, |s|)`` where ``t = 0``). Norms and the angle
    are kept; equal vectors give equal coordinates up to rounding."""
    t_sq = teacher.pow(2).sum(dim=1, keepdim=True)
    nonzero = t_sq > 0
    t_sq = torch.where(nonzero, t_sq, torch.ones_like(t_sq))
    dot = torch.where(nonzero, (student * teacher).sum(dim=1, keepdim=True), 0)
    norm = t_sq.sqrt()
    across = torch.addcmul(student, teacher, -dot / t_sq).pow(2).sum(dim=1, keepdim=True).sqrt()
    return (torch.cat([torch.where(nonzero, norm, 0), torch.zeros_like(norm)], dim=1),
            torch.cat([dot / norm, across], dim=1))


def hyperbolic_feature_distances(teachers: Sequence[Tensor], students: Sequence[Tensor],
                                 c: float = 1.0,
                                 clip_radius: Optional[float] = None) -> List[Tensor]:
    """``d_c`` per location of each level's teacher and student (B, C, H, W), in teacher-norm
    units, (B, H, W) float64 per level.

    Each level is written in :func:`plane_coordinates` and divided by :func:`teacher_norm_scale`
    of its teacher; then all levels' locations are clipped (at :func:`default_clip_radius` if
    ``clip_radius`` is None), mapped into the ball and compared in one call (every operation is
    per location), in float64, without gradients.
    """
    for teacher, student in zip(teachers, students):
        if teacher.shape != student.shape:
            raise ValueError(f'HSM needs teacher and adapted student features of one shape, got '
                             f'{tuple(teacher.shape)} and {tuple(student.shape)}')
    if clip_radius is None:
        clip_radius = default_clip_radius(c)
    with torch.no_grad():
        flat_t, flat_s = [], []
        for teacher, student in zip(teachers, students):
            t, s = (plane.flatten(2).transpose(1, 2) for plane in plane_coordinates(
                teacher.detach().double(), student.detach().double()))
            scale = teacher_norm_scale(t).clamp_min(1e-12)
            flat_t.append(t / scale)
            flat_s.append(s / scale)
        t = to_poincare_ball(torch.cat(flat_t, dim=1), c, clip_radius, dim=2)
        s = to_poincare_ball(torch.cat(flat_s, dim=1), c, clip_radius, dim=2)
        distances = hyperbolic_distance(t, s, c, dim=2).split([f.shape[1] for f in flat_t], dim=1)
        return [d.view(teacher.shape[0], *teacher.shape[2:])
                for d, teacher in zip(distances, teachers)]


def hyperbolic_feature_distance(teacher: Tensor, student: Tensor, c: float = 1.0,
                                clip_radius: Optional[float] = None) -> Tensor:
    """``d_c`` per location of one level's teacher and student (B, C, H, W), (B, 1, H, W)
    (:func:`hyperbolic_feature_distances`)."""
    return hyperbolic_feature_distances([teacher], [student], c, clip_radius)[0].unsqueeze(1)


def normalize_mask(distance: Tensor, eps: float) -> Tensor:
    """``(d + eps) / (mean(d) + eps)`` over each image's H x W: mean 1; all ones if d == 0."""
    return (distance + eps) / (distance.mean(dim=(2, 3), keepdim=True) + eps)


def hyperbolic_similarity_masks(teachers: Sequence[Tensor], students: Sequence[Tensor],
                                c: float = 1.0, clip_radius: Optional[float] = None,
                                eps: float = 1e-3) -> List[Tensor]:
    """``M_HSM`` of each level (eq. 11): (B, 1, H, W), detached, mean 1 over each image's H x W.

    ``teachers`` and ``students`` are (B, C, H, W) per level with equal C (the students already
    adapted); each mask has its teacher's dtype (at least float32).
    """
    distances = hyperbolic_feature_distances(teachers, students, c, clip_radius)
    return [normalize_mask(d.unsqueeze(1), eps).to(torch.promote_types(t.dtype, torch.float32))
            for d, t in zip(distances, teachers)]


def hyperbolic_similarity_mask(teacher: Tensor, student: Tensor, c: float = 1.0,
                               clip_radius: Optional[float] = None, eps: float = 1e-3) -> Tensor:
    """``M_HSM`` of one level (:func:`hyperbolic_similarity_masks`)."""
    return hyperbolic_similarity_masks([teacher], [student], c, clip_radius, eps)[0]


@register_model
class HyperbolicSimilarityMask(BaseModule):
    """The hyperbolic similarity mask of every level (IFKD eq. 9-11); no parameters.

    Args:
        c: curvature of the Poincaré ball (eq. 9-10; ``c = 1`` is the paper's geodesic case).
        clip_radius: clipping radius before the exponential map, in units of the teacher's mean
            norm; None = ``4 / sqrt(c)``, a guard at the ball's boundary (module docstring).
        eps: added to the distances before normalising to mean 1. Distances are in teacher
            norms (a student off by 0.05 % of the teacher's norm is ``1e-3`` away), so the
            default 1e-3 flattens only differences at that level and below, and gives all ones
            when teacher and student agree everywhere (the paper's formula has no eps; the
            previous 1e-6 let rounding noise make the mask).
    """

    def __init__(self, c: float = 1.0, clip_radius: Optional[float] = None, eps: float = 1e-3,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if c <= 0 or (clip_radius is not None and clip_radius <= 0) or eps <= 0:
            raise ValueError(f'HSM needs c > 0, clip_radius > 0 (or None) and eps > 0, got '
                             f'c={c}, clip_radius={clip_radius}, eps={eps}')
        if clip_radius is None:
            clip_radius = default_clip_radius(c)
        self.c = float(c)
        self.clip_radius = float(clip_radius)
        self.eps = float(eps)

    def forward(self, teacher: Sequence[Tensor], student: Sequence[Tensor]) -> List[Tensor]:
        """One (B, 1, H_l, W_l) mask per level, from teacher and adapted student features."""
        return hyperbolic_similarity_masks(teacher, student, self.c, self.clip_radius, self.eps)
