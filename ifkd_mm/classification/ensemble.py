"""The teacher ensemble (section 3.1, Figure 3): trained classifiers' weighted prediction scores.

Interpretation: the "prediction score" of a member is its softmax probability; the ensemble's
score is ``p = sum_k w_k softmax(z_k)`` (weights summing to 1, eq. 14), i.e. soft voting. Where
logits are needed (DIST, eq. 8-10) the ensemble gives ``log p``, so that
``softmax(log p / tau)`` is its probability sharpened or softened by the temperature.
"""
import copy
import os.path as osp
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.config import Config, ConfigDict
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import load_checkpoint
from mmpretrain.models.classifiers import BaseClassifier
from mmpretrain.structures import DataSample
from torch import Tensor, nn

from ..registry import CLS_MODELS


def build_cls_model(cfg: Union[dict, ConfigDict]) -> nn.Module:
    """Build an mmpretrain model whatever the current default scope is."""
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return CLS_MODELS.build(cfg)


def classifier_config(config: Union[str, dict]) -> ConfigDict:
    """The model dict of a classifier config file (its top-level ``data_preprocessor`` merged
    in, batch augmentations removed, pretrained initialisation dropped), or a model dict."""
    if isinstance(config, str):
        if not osp.isfile(config):
            raise FileNotFoundError(f'no classifier config file {config}')
        cfg = Config.fromfile(config)
        model = copy.deepcopy(cfg.model)
        if cfg.get('data_preprocessor') is not None:
            preprocessor = copy.deepcopy(cfg.data_preprocessor)
            preprocessor.update(model.get('data_preprocessor') or {})
            model.data_preprocessor = preprocessor
    elif isinstance(config, dict):
        model = ConfigDict(copy.deepcopy(config))
    else:
        raise TypeError(f'a classifier config must be a file or a model dict, got {config!r}')
    model.pop('init_cfg', None)
    if isinstance(model.get('backbone'), dict):
        model.backbone.pop('init_cfg', None)
    if isinstance(model.get('data_preprocessor'), dict):
        model.data_preprocessor.pop('batch_augments', None)
    return model


def load_classifier(config: Union[str, dict], checkpoint: Optional[str]) -> nn.Module:
    """A classifier built from ``config`` with the weights of ``checkpoint`` (strictly), frozen."""
    if not checkpoint:
        raise ValueError(f'a trained checkpoint is required for the classifier of {config}')
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'no checkpoint file {checkpoint}')
    model = build_cls_model(classifier_config(config))
    try:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True, revise_keys=[])
    except RuntimeError as err:
        raise RuntimeError(f'checkpoint {checkpoint} does not fit {config}: {err}') from err
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return model


def same_normalisation(a: nn.Module, b: nn.Module) -> bool:
    """Whether two ``ClsDataPreprocessor`` normalise and order channels identically."""
    def key(pre: nn.Module) -> Tuple:
        normalise = bool(getattr(pre, '_enable_normalize', False))
        stats = (pre.mean.flatten().tolist(), pre.std.flatten().tolist()) if normalise else ()
        return normalise, stats, bool(getattr(pre, '_channel_conversion', False))
    return key(a) == key(b)


def eq14_weights(vary_weight: float, num_members: int = 3) -> List[float]:
    """Eq. 14: the varied member gets ``vary_weight``, the others share the rest equally
    (``W_B0 = W_R50 = (1 - W_B3) * 0.5``); returned with the varied member first."""
    if not 0 <= vary_weight <= 1:
        raise ValueError(f'the varied weight must be in [0, 1], got {vary_weight}')
    rest = (1 - vary_weight) / (num_members - 1)
    return [vary_weight] + [rest] * (num_members - 1)


def combine(member_probs: Tensor, weights: Sequence[float]) -> Tensor:
    """``sum_k w_k p_k`` of ``(K, N, C)`` member probabilities: the ensemble's scores."""
    w = torch.as_tensor(list(weights), dtype=member_probs.dtype, device=member_probs.device)
    if w.numel() != member_probs.size(0):
        raise ValueError(f'{w.numel()} weights for {member_probs.size(0)} members')
    return (w[:, None, None] * member_probs).sum(0)


@CLS_MODELS.register_module()
class TeacherEnsemble(BaseClassifier):
    """Weighted soft-voting ensemble of trained classifiers (ERKT-Net's teacher, Figure 3).

    Args:
        members: ``dict(name=..., config=<classifier config file or model dict>,
            checkpoint=<file>, weight=<float>)`` each; the weights must sum to 1 (0.3 / 0.4 / 0.3
            for EfficientNet-B0 / EfficientNet-B3 / ResNet-50 in the paper).
        data_preprocessor: defaults to the first member's (without batch augmentations); every
            member must normalise as it does, since all see the same input tensor.

    ``mode='tensor'`` gives ``log p`` (``p`` the weighted probability), ``'predict'`` sets
    ``pred_score = p``. The members are frozen and loaded at build time; the ensemble is not
    trainable.
    """

    def __init__(self, members: Sequence[dict], data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if len(members) < 2:
            raise ValueError(f'an ensemble needs at least 2 members, got {len(members)}')
        configs = [classifier_config(m['config']) for m in members]
        if data_preprocessor is None:
            data_preprocessor = configs[0].get('data_preprocessor')
        data_preprocessor = dict(data_preprocessor or {})
        data_preprocessor.setdefault('type', 'ClsDataPreprocessor')
        super().__init__(init_cfg=init_cfg, data_preprocessor=data_preprocessor)
        self.names = [m.get('name', f'member{i}') for i, m in enumerate(members)]
        self.weights = [float(m['weight']) for m in members]
        if min(self.weights) < 0 or abs(sum(self.weights) - 1) > 1e-6:
            raise ValueError(f'ensemble weights must be >= 0 and sum to 1, got {self.weights}')
        self.members = nn.ModuleList(
            load_classifier(cfg, m.get('checkpoint')) for cfg, m in zip(configs, members))
        classes = {getattr(getattr(m, 'head', None), 'num_classes', None) for m in self.members}
        if len(classes) != 1 or None in classes:
            raise ValueError(f'the members predict different numbers of classes: {classes}')
        self.num_classes = classes.pop()
        for name, member in zip(self.names, self.members):
            if not same_normalisation(member.data_preprocessor, self.data_preprocessor):
                raise ValueError(f'member {name} normalises its input differently from the '
                                 'ensemble: all members must share mean, std and to_rgb')

    def init_weights(self) -> None:
        """Nothing to initialise: the members hold their trained checkpoints."""

    def train(self, mode: bool = True) -> 'TeacherEnsemble':
        return super().train(False)

    def member_probs(self, inputs: Tensor) -> Tensor:
        """``(K, N, C)`` softmax probabilities of the K members on preprocessed inputs."""
        return torch.stack([F.softmax(m(inputs, mode='tensor'), dim=1) for m in self.members])

    def probs(self, inputs: Tensor) -> Tensor:
        """The ensemble's ``(N, C)`` prediction scores ``sum_k w_k softmax(z_k)``."""
        return combine(self.member_probs(inputs), self.weights)

    def forward(self, inputs: Tensor, data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor'):
        if mode == 'tensor':
            return self.probs(inputs).clamp_min(torch.finfo(inputs.dtype).tiny).log()
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'loss':
            raise RuntimeError('the teacher ensemble is built from trained members and is not '
                               'trained itself')
        raise RuntimeError(f'invalid mode "{mode}"')

    @torch.no_grad()
    def predict(self, inputs: Tensor,
                data_samples: Optional[List[DataSample]] = None) -> List[DataSample]:
        scores = self.probs(inputs)
        if data_samples is None:
            data_samples = [DataSample() for _ in range(scores.size(0))]
        for sample, score in zip(data_samples, scores):
            sample.set_pred_score(score).set_pred_label(score.argmax(dim=0, keepdim=True))
        return data_samples

    def extract_feat(self, inputs: Tensor):
        raise NotImplementedError('the ensemble has no single feature map: use its members')
