"""AT (Zagoruyko & Komodakis, "Paying More Attention to Attention", ICLR 2017) on FPN levels."""
from typing import Dict, Optional

import torch.nn.functional as F
from torch import Tensor

from ...registry import register_model
from ..base import DistillBatch, DistillLoss
from .fitnet import paired_levels


def attention_map(features: Tensor, p: float = 2.0) -> Tensor:
    """Activation-based attention ``Q = sum_c |F_c|^p`` (AT eq. 1), flattened to (B, H*W) and
    L2-normalised per image (``Q / ||Q||_2`` of eq. 2)."""
    return F.normalize(features.abs().pow(p).sum(1).flatten(1), dim=1)


def at_loss(student: Tensor, teacher: Tensor, p: float = 2.0) -> Tensor:
    """Mean over images and locations of the squared difference of the normalised maps."""
    return (attention_map(student, p) - attention_map(teacher, p)).pow(2).mean()


@register_model
class ATLoss(DistillLoss):
    """Attention transfer on every FPN level: ``beta / 2 * sum_l at_loss(F_S^l, F_T^l)``.

    AT eq. 2 adds ``beta/2 * sum_j || Q_S^j/||Q_S^j|| - Q_T^j/||Q_T^j|| ||_p`` with p = 2, and
    the paper sets "beta = 10^3 divided by the number of elements in attention map and batch
    size for each layer". We follow the authors' code (github szagoruyko/attention-transfer,
    ``at_loss = (at(x) - at(y)).pow(2).mean()``, ``beta / 2 * sum``), which realises exactly that
    normalisation on the squared 2-norm: the constant is beta = 1000, and each level's squared
    distance is divided by B * H_l * W_l. Attention maps are channel-free, so no adapter is
    needed between student and teacher channels.

    Args:
        beta: the paper's beta (1000).
        p: exponent of the attention map (2).
    """

    requires = ('neck', )

    def __init__(self, beta: float = 1000.0, p: float = 2.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.beta = beta
        self.p = p

    def forward(self, student: Dict[str, object], teacher: Dict[str, object],
                batch: DistillBatch) -> Dict[str, Tensor]:
        s_levels, t_levels = paired_levels(student, teacher, 'neck')
        loss = sum(at_loss(s, t, self.p) for s, t in zip(s_levels, t_levels))
        return dict(loss_at=self.beta / 2 * loss)
