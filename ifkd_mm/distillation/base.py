"""What a distillation loss module sees: the recorded outputs of student and teacher."""
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor

#: Outputs the distiller records on both detectors, by name:
#: ``backbone`` (tuple of stage features), ``neck`` (tuple of FPN levels), ``cls_scores`` and
#: ``bbox_preds`` (per-level lists from the dense head: ``bbox_head`` of a one-stage detector,
#: ``rpn_head`` objectness/deltas of a two-stage one), ``dense_head`` (that head's whole output),
#: ``assignments`` (the student only: the ``AssignResult`` of each image, in batch order, that
#: the dense head's assigner gave while computing the student's own loss).
RECORDABLE = ('backbone', 'neck', 'cls_scores', 'bbox_preds', 'dense_head', 'assignments')


@dataclass
class DistillBatch:
    """The batch being distilled.

    Attributes:
        inputs: the preprocessed (normalised, padded) images, (B, 3, H, W).
        data_samples: mmdet data samples with ``gt_instances`` and ``metainfo``.
        mean, std: the data preprocessor's normalisation, (1, 3, 1, 1), to recover pixel values.
        bgr_to_rgb: whether the preprocessor turned BGR input into RGB (``inputs`` is RGB then).
    """
    inputs: Tensor
    data_samples: Sequence
    mean: Tensor
    std: Tensor
    bgr_to_rgb: bool = True
    cache: Dict[str, object] = field(default_factory=dict)

    def pixel_images(self) -> Tensor:
        """The batch as RGB pixel values in [0, 255] (padding included), (B, 3, H, W)."""
        images = self.inputs * self.std + self.mean
        return images if self.bgr_to_rgb else images.flip(1)

    @property
    def img_metas(self) -> List[dict]:
        return [sample.metainfo for sample in self.data_samples]


class DistillLoss(BaseModule):
    """Base of the distillation loss modules composed by :class:`DetectionDistiller`.

    A subclass sets ``requires`` (names from :data:`RECORDABLE` it reads from both models) and
    implements :meth:`forward`, which returns a dict of named loss tensors (names start with
    ``loss_``). ``student_channels`` / ``teacher_channels``, when a subclass has them, are checked
    against the detectors' necks when the distiller is built.
    """

    requires: Tuple[str, ...] = ('neck', )

    def forward(self, student: Dict[str, object], teacher: Dict[str, object],
                batch: DistillBatch) -> Dict[str, Tensor]:
        raise NotImplementedError


def as_levels(features) -> List[Tensor]:
    """A feature pyramid (tuple/list of tensors, or one tensor) as a list of levels."""
    return [features] if isinstance(features, torch.Tensor) else list(features)
