"""ERKT-Net distillation (Figure 4, Algorithm 1): a student classifier and a frozen teacher.

The teacher (usually the :class:`~ifkd_mm.classification.ensemble.TeacherEnsemble`) is kept
outside the module tree, as in :mod:`ifkd_mm.distillation.distiller`: it is never in the
optimizer, in ``state_dict`` (checkpoints hold the student only) or in ``init_weights``; it is
moved with the distiller, stays in eval mode and runs under ``torch.no_grad()``. Both see the
same batch after the data preprocessor, i.e. after the VSM's batch-level CutMix (section 3.2).
Prediction runs the student alone.

Training also logs ``teacher_acc``, the teacher's top-1 accuracy (%) on each augmented training
batch: DIST copies the teacher's predictions on exactly these images, so an augmentation that
the teachers cannot classify (e.g. black erasing patches) shows up there as wrong targets.
"""
import copy
from typing import Dict, List, Optional

import torch
from mmpretrain.models.classifiers import BaseClassifier
from mmpretrain.structures import DataSample
from torch import Tensor

from ..registry import CLS_MODELS
from .ensemble import build_cls_model, same_normalisation


def top1_accuracy(logits: Tensor, data_samples: List[DataSample]) -> Tensor:
    """Top-1 accuracy in % of ``(N, C)`` logits against each sample's label: the class of
    largest ``gt_score`` where the batch augmentation set one (after CutMix, the class that
    covers most of the mixed image), else ``gt_label``."""
    targets = torch.stack([
        sample.gt_score.argmax() if 'gt_score' in sample else sample.gt_label.reshape(())
        for sample in data_samples]).to(logits.device)
    return (logits.argmax(dim=1) == targets).float().mean() * 100


@CLS_MODELS.register_module()
class ERKTDistiller(BaseClassifier):
    """``Loss = R * L_cross + (2 - R) * L_DIST`` (eq. 15; ``R = 1`` gives eq. 12).

    Args:
        student: the student classifier's model dict (EfficientNet-B0 in the paper); its head's
            loss is ``L_cross`` (``CutMixCrossEntropyLoss``, eq. 11).
        teacher: the teacher's model dict, e.g. ``dict(type='TeacherEnsemble', members=[...])``;
            it must load trained weights when built and normalise like the student.
        distill_loss: the DIST loss (``DISTLoss``, eq. 8-10) giving ``loss_inter`` and
            ``loss_intra`` already weighted (2.0 each in the paper, times ``tau ** 2`` as in
            the DIST reference code).
        ratio: ``R`` of eq. 15, in ``[0, 2]``.
        data_preprocessor: with the batch CutMix of the VSM; defaults to the student's, else a
            copy of the teacher's (the runner passes the config's top-level one).
    """

    def __init__(self, student: dict, teacher: dict,
                 distill_loss: dict = dict(type='DISTLoss', tau=2.0, inter_weight=2.0,
                                           intra_weight=2.0),
                 ratio: float = 1.0, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if not 0 <= ratio <= 2:
            raise ValueError(f'the loss ratio R must be in [0, 2] (eq. 15), got {ratio}')
        student = copy.deepcopy(student)
        teacher_model = build_cls_model(copy.deepcopy(teacher))
        if data_preprocessor is None:
            data_preprocessor = student.get('data_preprocessor')
        if data_preprocessor is None:
            data_preprocessor = copy.deepcopy(teacher_model.data_preprocessor)
        else:
            data_preprocessor = dict(data_preprocessor)
            data_preprocessor.setdefault('type', 'ClsDataPreprocessor')
        super().__init__(init_cfg=init_cfg, data_preprocessor=data_preprocessor)
        self.ratio = ratio
        self.student = build_cls_model(student)
        teacher_model.eval()
        for param in teacher_model.parameters():
            param.requires_grad_(False)
        object.__setattr__(self, 'teacher', teacher_model)
        self.distill_loss = build_cls_model(distill_loss)
        student_classes = getattr(self.student.head, 'num_classes', None)
        teacher_classes = getattr(teacher_model, 'num_classes', None) or getattr(
            getattr(teacher_model, 'head', None), 'num_classes', None)
        if None not in (student_classes, teacher_classes) and student_classes != teacher_classes:
            raise ValueError(f'the teacher predicts {teacher_classes} classes and the student '
                             f'{student_classes}: they must be trained on the same classes')
        if not same_normalisation(teacher_model.data_preprocessor, self.data_preprocessor):
            raise ValueError('the teacher normalises its input differently from the distiller\'s '
                             'data_preprocessor: they see the same tensor, so mean, std and '
                             'to_rgb must agree')

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        self.teacher._apply(fn, *args, **kwargs)
        return self

    def train(self, mode: bool = True) -> 'ERKTDistiller':
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(self, inputs: Tensor, data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor'):
        if mode == 'tensor':
            return self.student(inputs, data_samples, mode='tensor')
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise RuntimeError(f'invalid mode "{mode}"')

    def loss(self, inputs: Tensor, data_samples: List[DataSample]) -> Dict[str, Tensor]:
        """``loss_cross = R * L_cross``; ``loss_inter``, ``loss_intra`` scaled by ``2 - R``;
        ``teacher_acc`` (logged, not a loss): :func:`top1_accuracy` of the teacher."""
        logits = self.student.head(self.student.extract_feat(inputs))
        cross = self.student.head._get_loss(logits, data_samples)['loss']
        with torch.no_grad():
            teacher_logits = self.teacher(inputs, mode='tensor')
        losses = dict(loss_cross=self.ratio * cross)
        for name, value in self.distill_loss(logits, teacher_logits).items():
            losses[name] = (2 - self.ratio) * value
        losses['teacher_acc'] = top1_accuracy(teacher_logits, data_samples)
        return losses

    def predict(self, inputs: Tensor,
                data_samples: Optional[List[DataSample]] = None) -> List[DataSample]:
        return self.student.predict(inputs, data_samples)

    def extract_feat(self, inputs: Tensor, stage: str = 'neck'):
        return self.student.extract_feat(inputs, stage=stage)
