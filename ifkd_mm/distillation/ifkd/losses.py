"""IFKD's distillation losses (section 3.4): the feature loss (eq. 12) and the head loss (eq. 13).

``L_feat = sum_l 1/N_l sum_ij M[l,i,j] sum_c (FDR(EDE(F_T)) - FDR(adapt(F_S)))^2`` and
``L_head = sum_l 1/N_l sum_ij M[l,i,j] sum_c BCE(sigmoid(y_s), sigmoid(y_t))``, with
``L = L_GT + alpha L_feat + beta L_head``.

Weights. The paper reports alpha = 0.06 and beta = 0.5 (section 4.5) without its normalisation;
the public code normalises exactly as here (sum over channels, mask-weighted mean over
locations, as FRS) and hard-codes 1e-4 (feature) and 1e-3 (head). Under this normalisation the
paper's numbers make the feature term tens to hundreds of times the detection loss (its
gradient then dominates, and is clipped in the demo), so the defaults are the weights of the
authors' released code, alpha = 1e-4 and beta = 1e-3, under which neither term dominates the
detection loss; ``configs/ifkd/ifkd-paper-weights_*`` keep the paper's 0.06 / 0.5.

``N_l`` is the number of locations H_l x W_l of level l in one image; the per-image sums are
averaged over the batch. ``M`` is the HSM mask (1 where HSM is off) computed from the raw teacher
features and the adapted student features, before EDE and FDR. The head loss uses the same mask
as the feature loss (eq. 12 and 13 share ``M_HSM``): the feature loss leaves its masks in
``batch.cache``; a head loss that runs without them (feature loss absent, after it, or without
HSM) computes its own from the two necks' features, which then need equal channels.
"""
from typing import Dict, List, Optional, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from ...registry import MODELS, register_model
from ..base import DistillBatch, DistillLoss, as_levels
from .fdr import frs_mask, full_precision

HSM_CACHE_KEY = 'ifkd_hsm_masks'


def masked_level_sum(per_location: Tensor, mask: Optional[Tensor]) -> Tensor:
    """``1/N_l sum_ij M_ij x_ij`` of (B, 1, H, W) values, averaged over the batch."""
    if mask is not None:
        per_location = per_location * mask
    return per_location.sum(dim=(1, 2, 3)).mean() / per_location[0, 0].numel()


def squared_channel_norm(difference: Tensor) -> Tensor:
    """``sum_c (t - s)^2`` per location of a teacher-student difference, (B, 1, H, W)."""
    return difference.pow(2).sum(dim=1, keepdim=True)


def masked_soft_bce(student_logits: Tensor, teacher_logits: Tensor,
                    mask: Optional[Tensor]) -> Tensor:
    """One level of eq. 13: ``1/N_l sum_ij M_ij sum_c BCE(sigmoid(y_s), sigmoid(y_t))``,
    averaged over the batch; ``mask`` (B, 1, H, W), constant, or None (``M = 1``).

    One BCE call from the logits (stable form), weighted by ``M`` and summed inside it: no
    further class-sized map (per-class losses, weighted copy) is made.
    """
    student = full_precision(student_logits)
    target = full_precision(teacher_logits.detach()).sigmoid()
    total = F.binary_cross_entropy_with_logits(student, target, weight=mask, reduction='sum')
    batch, _, height, width = student.shape
    return total / (batch * height * width)


def check_levels(name: str, expected: int, **levels: Sequence[Tensor]) -> None:
    """Raise a clear error when a recorded pyramid does not have ``expected`` levels."""
    for key, value in levels.items():
        if len(value) != expected:
            raise ValueError(f'{name} expects {expected} levels but {key} has {len(value)}: '
                             'set num_levels to the number of FPN levels of both detectors')


@register_model
class IFKDFeatureLoss(DistillLoss):
    """IFKD feature distillation on every FPN level (eq. 12); returns ``loss_ifkd_feat``.

    Args:
        student_channels, teacher_channels: FPN channels of student and teacher.
        alpha: loss weight (1e-4, the public code's; the paper's 0.06 is a config variant).
        ede: config of :class:`ExternalDisturbanceEnhancement` (``type`` optional), None = off.
            Off by default because it needs an external artefact:
            ``dict(checkpoint=<mobile_sam.pt>)`` or ``dict(mode='cached')`` with cached priors.
        fdr: config of :class:`FrequencyDomainReconstruction` without ``channels`` and
            ``num_levels`` (taken from here), None = off. Its ``M_FRS`` needs the teacher's
            dense-head class scores, which are recorded only when FDR is on.
        hsm: config of :class:`HyperbolicSimilarityMask`, None = off (``M = 1``).
        num_levels: number of FPN levels (one adapter and one FDR filter each).
        adapter_kernel_size: kernel of the per-level conv ``phi_adapt`` from student to teacher
            channels (3, as the public code's adapter; 1 for a pointwise adapter).
    """

    requires = ('neck', 'cls_scores')

    def __init__(self, student_channels: int, teacher_channels: int, alpha: float = 1e-4,
                 ede: Optional[dict] = None, fdr: Optional[dict] = dict(),
                 hsm: Optional[dict] = dict(), num_levels: int = 5,
                 adapter_kernel_size: int = 3, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_levels < 1:
            raise ValueError(f'num_levels must be at least 1, got {num_levels}')
        self.student_channels = student_channels
        self.teacher_channels = teacher_channels
        self.alpha = alpha
        self.num_levels = num_levels
        self.adapters = nn.ModuleList(
            nn.Conv2d(student_channels, teacher_channels, adapter_kernel_size,
                      padding=adapter_kernel_size // 2) for _ in range(num_levels))
        self.ede = build_part('ExternalDisturbanceEnhancement', ede)
        self.fdr = build_part('FrequencyDomainReconstruction', fdr,
                              channels=teacher_channels, num_levels=num_levels)
        if self.fdr is not None and self.fdr.num_levels != len(self.adapters):
            raise ValueError(f'{len(self.adapters)} adapters (num_levels={num_levels}) but '
                             f'{self.fdr.num_levels} FDR filters: leave fdr.num_levels unset')
        self.hsm = build_part('HyperbolicSimilarityMask', hsm)
        if self.fdr is None:
            self.requires = ('neck', )

    def adapt(self, student: Sequence[Tensor]) -> List[Tensor]:
        """``phi_adapt`` of every student level."""
        return [adapter(level) for adapter, level in zip(self.adapters, student)]

    def forward(self, student: Dict[str, object], teacher: Dict[str, object],
                batch: DistillBatch) -> Dict[str, Tensor]:
        feat_t, feat_s = as_levels(teacher['neck']), as_levels(student['neck'])
        check_levels(type(self).__name__, self.num_levels, teacher_neck=feat_t,
                     student_neck=feat_s)
        feat_s = self.adapt(feat_s)
        masks: List[Optional[Tensor]] = [None] * self.num_levels
        if self.hsm is not None:
            masks = self.hsm(feat_t, feat_s)
            batch.cache[HSM_CACHE_KEY] = masks
        if self.ede is not None:
            feat_t = self.ede(feat_t, batch)
        if self.fdr is not None:
            scores = as_levels(teacher['cls_scores'])
            check_levels(type(self).__name__, self.num_levels, teacher_cls_scores=scores)
            frs = [frs_mask(score) for score in scores]
            for level, (m, t) in enumerate(zip(frs, feat_t)):
                if m.shape[-2:] != t.shape[-2:]:
                    raise ValueError(f'level {level}: teacher class scores are '
                                     f'{tuple(m.shape[-2:])} but its features '
                                     f'{tuple(t.shape[-2:])}')
            differences = self.fdr.difference(feat_t, feat_s, frs)
        else:
            differences = [t - s for t, s in zip(feat_t, feat_s)]
        loss = sum(masked_level_sum(squared_channel_norm(d), m) for d, m in zip(differences, masks))
        return {'loss_ifkd_feat': self.alpha * loss}


@register_model
class IFKDHeadLoss(DistillLoss):
    """IFKD head distillation on the dense head's class outputs of every level (eq. 13).

    Returns ``loss_ifkd_head``. The mask is the feature loss's HSM mask of the same step when an
    :class:`IFKDFeatureLoss` with HSM ran before this loss (list it first in ``distill_losses``);
    otherwise HSM is computed here, with ``hsm``'s settings, from the teacher's and the
    student's neck features, which must then have equal channels.

    Args:
        beta: loss weight (1e-3, the public code's; the paper's 0.5 is a config variant).
        hsm: config of :class:`HyperbolicSimilarityMask`, None = off (``M = 1``).
        student_channels, teacher_channels: the necks' channels, if known (checked against the
            detectors; unequal channels require the feature loss's shared mask).
    """

    requires = ('neck', 'cls_scores')

    def __init__(self, beta: float = 1e-3, hsm: Optional[dict] = dict(),
                 student_channels: Optional[int] = None,
                 teacher_channels: Optional[int] = None, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.beta = beta
        self.hsm = build_part('HyperbolicSimilarityMask', hsm)
        self.student_channels = student_channels
        self.teacher_channels = teacher_channels
        if self.hsm is None:
            self.requires = ('cls_scores', )

    def masks(self, student: Dict[str, object], teacher: Dict[str, object],
              batch: DistillBatch, num_levels: int) -> List[Optional[Tensor]]:
        """The HSM mask of every level (shared with the feature loss when it left them)."""
        if self.hsm is None:
            return [None] * num_levels
        if HSM_CACHE_KEY in batch.cache:
            return batch.cache[HSM_CACHE_KEY]
        feat_t, feat_s = as_levels(teacher['neck']), as_levels(student['neck'])
        if feat_t[0].shape[1] != feat_s[0].shape[1]:
            raise ValueError(
                f'IFKDHeadLoss: the HSM mask needs equal neck channels (teacher '
                f'{feat_t[0].shape[1]}, student {feat_s[0].shape[1]}) or an IFKDFeatureLoss '
                'with hsm listed before it in distill_losses, whose adapted mask it then shares')
        return self.hsm(feat_t, feat_s)

    def forward(self, student: Dict[str, object], teacher: Dict[str, object],
                batch: DistillBatch) -> Dict[str, Tensor]:
        scores_t, scores_s = as_levels(teacher['cls_scores']), as_levels(student['cls_scores'])
        check_levels(type(self).__name__, len(scores_t), student_cls_scores=scores_s)
        masks = self.masks(student, teacher, batch, len(scores_t))
        check_levels(type(self).__name__, len(scores_t), hsm_masks=masks)
        loss = sum(masked_soft_bce(s, t, m) for s, t, m in zip(scores_s, scores_t, masks))
        return {'loss_ifkd_head': self.beta * loss}


def build_part(type_name: str, cfg: Optional[dict], **defaults) -> Optional[nn.Module]:
    """Build an IFKD part from its config (None = switched off); ``type`` may be omitted."""
    if cfg is None:
        return None
    cfg = dict(cfg)
    if cfg.setdefault('type', type_name) != type_name:
        raise ValueError(f'expected a {type_name} config, got type={cfg["type"]!r}')
    for key, value in defaults.items():
        cfg.setdefault(key, value)
    return MODELS.build(cfg)
