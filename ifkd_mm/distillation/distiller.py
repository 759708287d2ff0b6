"""One distiller for every method: a trainable student, a frozen teacher, a list of loss modules.

The teacher is kept outside the module tree (not a child module): it is never in the optimizer,
in DDP's gradient sync, in ``state_dict`` (checkpoints hold the student and the loss modules'
adapters only) or in ``init_weights``; it is moved with the distiller, stays in eval mode and runs
under ``torch.no_grad()`` (optionally under autocast, ``teacher_autocast``). Prediction runs the
student alone.
"""
import contextlib
import copy
import math
import os.path as osp
from typing import Dict, Iterator, List, Optional, Sequence, Union

import torch
from mmdet.models.detectors.base import BaseDetector
from mmengine.config import Config, ConfigDict
from mmengine.runner.checkpoint import load_checkpoint
from torch import Tensor, nn

from ..registry import MODELS, register_model
from .base import RECORDABLE, DistillBatch, DistillLoss

#: ``teacher_autocast`` values -> the reduced precision the teacher's forward runs in
TEACHER_AUTOCAST_DTYPES: Dict[str, torch.dtype] = dict(bfloat16=torch.bfloat16,
                                                       float16=torch.float16)


def dense_head(detector: nn.Module) -> nn.Module:
    """The dense head whose per-level outputs are distilled: RPN of two-stage detectors."""
    head = getattr(detector, 'rpn_head', None) or getattr(detector, 'bbox_head', None)
    if head is None:
        raise ValueError(f'{type(detector).__name__} has neither rpn_head nor bbox_head')
    return head


def num_classes(detector: nn.Module) -> Optional[int]:
    """The detector's number of object classes (from its box head), if it has one."""
    roi_head = getattr(detector, 'roi_head', None)
    head = getattr(roi_head, 'bbox_head', None) if roi_head is not None else \
        getattr(detector, 'bbox_head', None)
    return getattr(head, 'num_classes', None)


@contextlib.contextmanager
def recording_assignments(head: nn.Module, store: Dict[str, object]) -> Iterator:
    """Record in ``store['assignments']`` each ``AssignResult`` the head's assigner returns."""
    assigner = getattr(head, 'assigner', None)
    if assigner is None:
        raise ValueError(f'{type(head).__name__} has no assigner whose assignments to record')
    results = store.setdefault('assignments', [])

    def assign(*args, **kwargs):
        result = type(assigner).assign(assigner, *args, **kwargs)
        results.append(result)
        return result

    assigner.assign = assign
    try:
        yield store
    finally:
        del assigner.assign


@contextlib.contextmanager
def recording(detector: nn.Module, names: Sequence[str], store: Dict[str, object]) -> Iterator:
    """Record the first output of the detector's backbone, neck and dense head into ``store``,
    and the dense head's assignments when ``names`` has ``assignments`` (during a loss)."""
    def keep(name: str):
        def hook(module, args, output):
            if name in store:
                return
            store[name] = output
            if name == 'dense_head':
                store['cls_scores'], store['bbox_preds'] = output[0], output[1]
        return hook

    wanted = {'dense_head' if name in ('cls_scores', 'bbox_preds') else name for name in names}
    modules = dict(backbone=getattr(detector, 'backbone', None),
                   neck=getattr(detector, 'neck', None))
    if wanted & {'dense_head', 'assignments'}:
        modules['dense_head'] = dense_head(detector)
    with contextlib.ExitStack() as stack:
        if 'assignments' in wanted:
            stack.enter_context(recording_assignments(modules['dense_head'], store))
        for name in wanted - {'assignments'}:
            if modules.get(name) is None:
                raise ValueError(f'{type(detector).__name__} has no {name} to distill')
            stack.callback(modules[name].register_forward_hook(keep(name)).remove)
        yield store


def teacher_autocast_dtype(name: Optional[str]) -> Optional[torch.dtype]:
    """The dtype of a ``teacher_autocast`` value (None: no autocast, full precision)."""
    if name is None:
        return None
    if name not in TEACHER_AUTOCAST_DTYPES:
        raise ValueError(f'teacher_autocast must be None or one of '
                         f'{sorted(TEACHER_AUTOCAST_DTYPES)}, got {name!r}')
    return TEACHER_AUTOCAST_DTYPES[name]


def autocast_or_not(device_type: str,
                    dtype: Optional[torch.dtype]) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to ``dtype`` on ``device_type``, or nothing when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device_type, dtype=dtype)


def to_float32(value, cast: Optional[Dict[int, object]] = None):
    """A (nested list/tuple/dict of) recorded output(s) with every floating tensor in float32.

    What is reached twice (``cls_scores`` and ``bbox_preds`` are items of ``dense_head``) is cast
    once and stays shared; ``cast`` maps the ids of what was already cast to the result.
    """
    cast = {} if cast is None else cast
    if id(value) not in cast:
        if isinstance(value, Tensor):
            cast[id(value)] = value.float() if value.is_floating_point() else value
        elif isinstance(value, (list, tuple)):
            cast[id(value)] = type(value)(to_float32(item, cast) for item in value)
        elif isinstance(value, dict):
            cast[id(value)] = {key: to_float32(item, cast) for key, item in value.items()}
        else:
            return value
    return cast[id(value)]


def recorded_outputs(detector: nn.Module, names: Sequence[str],
                     batch_inputs: Tensor) -> Dict[str, object]:
    """Run the detector's backbone and neck (and dense head if ``names`` reads it); record them
    (no loss is computed: no ``assignments``)."""
    outputs: Dict[str, object] = {}
    names = [name for name in names if name != 'assignments']
    with recording(detector, names, outputs):
        features = detector.extract_feat(batch_inputs)
        if 'dense_head' in {'dense_head' if n in ('cls_scores', 'bbox_preds') else n
                            for n in names}:
            dense_head(detector)(features)
    return outputs


def build_teacher(teacher: Union[dict, ConfigDict]) -> nn.Module:
    """Build the teacher from ``dict(config=<file or model dict>, checkpoint=<file>)``."""
    config, checkpoint = teacher.get('config'), teacher.get('checkpoint')
    if isinstance(config, str):
        if not osp.isfile(config):
            raise FileNotFoundError(f'teacher.config: no config file {config}')
        config = Config.fromfile(config).model
    if not isinstance(config, dict):
        raise TypeError('teacher.config must be a config file or a model dict')
    if not checkpoint:
        raise ValueError('teacher.checkpoint is required: a distillation teacher must be trained')
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'teacher.checkpoint: no checkpoint file {checkpoint}')
    config = copy.deepcopy(config)
    config.pop('init_cfg', None)
    model = MODELS.build(config)
    try:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True, revise_keys=[])
    except RuntimeError as err:
        raise RuntimeError(f'teacher.checkpoint {checkpoint} does not fit teacher.config: '
                           f'{err}') from err
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return model


@register_model
class DetectionDistiller(BaseDetector):
    """Distil a teacher detector into a student detector (mmdet or mmrotate).

    Args:
        student: the student detector's model config (e.g. ``{{_base_.model}}``).
        teacher: ``dict(config=..., checkpoint=...)``; ``config`` is a config file (its ``model``
            is used) or a model dict; the checkpoint is required and must match it exactly.
        distill_losses: configs of :class:`DistillLoss` modules; the losses they return are added
            to the student's own (``L = L_GT + sum of the weighted distillation losses``).
        data_preprocessor: defaults to the student's; the teacher sees the same batch.
        teacher_autocast: None (default: the teacher runs in full precision), ``'bfloat16'`` or
            ``'float16'``: the teacher's forward runs under ``torch.autocast`` to that dtype on the
            inputs' device and everything it records is cast back to float32 before the loss
            modules read it. Faster only where the device has reduced-precision units (GPU tensor
            cores); on a CPU without them (AVX2 only) the teacher runs many times slower.
    """

    def __init__(self,
                 student: dict,
                 teacher: dict,
                 distill_losses: Sequence[dict] = (),
                 data_preprocessor: Optional[dict] = None,
                 teacher_autocast: Optional[str] = None,
                 init_cfg: Optional[dict] = None) -> None:
        student = copy.deepcopy(student)
        if data_preprocessor is None:
            data_preprocessor = student.get('data_preprocessor')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.teacher_autocast = teacher_autocast_dtype(teacher_autocast)
        self.student = MODELS.build(student)
        self.student_init_rng = torch.get_rng_state()
        object.__setattr__(self, 'teacher', build_teacher(teacher))
        self.distill_losses = nn.ModuleList(MODELS.build(cfg) for cfg in distill_losses)
        for loss in self.distill_losses:
            if not isinstance(loss, DistillLoss):
                raise TypeError(f'{type(loss).__name__} in distill_losses is not a DistillLoss')
        check_compatible(self.student, self.teacher, self.distill_losses)
        self.requires = sorted({name for loss in self.distill_losses for name in loss.requires})
        unknown = set(self.requires) - set(RECORDABLE)
        if unknown:
            raise ValueError(f'distill_losses require {sorted(unknown)}; the distiller records '
                             f'{RECORDABLE}')

    def init_weights(self) -> None:
        """Initialise the student from the CPU random state right after its construction, which
        is the state in which a runner initialises the same student config trained alone: with
        one seed, the distilled student and the student alone start from the same weights (the
        teacher's construction and the loss modules' do not shift it). Then the loss modules."""
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self.student_init_rng)
            self.student.init_weights()
        super().init_weights()

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        self.teacher._apply(fn, *args, **kwargs)
        return self

    def train(self, mode: bool = True) -> 'DetectionDistiller':
        super().train(mode)
        self.teacher.eval()
        return self

    def loss(self, batch_inputs: Tensor, batch_data_samples: list) -> Dict[str, Tensor]:
        student_out: Dict[str, object] = {}
        with recording(self.student, self.requires, student_out):
            losses = self.student.loss(batch_inputs, batch_data_samples)
        with torch.no_grad():
            teacher_out = self.teacher_outputs(batch_inputs)
        batch = self.distill_batch(batch_inputs, batch_data_samples)
        for module in self.distill_losses:
            for name, value in module(student_out, teacher_out, batch).items():
                if not torch.isfinite(value).all():
                    raise FloatingPointError(
                        f'{type(module).__name__} returned a non-finite {name} ({value}); '
                        f'teacher features finite: {all_finite(teacher_out)}, student features '
                        f'finite: {all_finite(student_out)}')
                if name in losses:
                    raise KeyError(f'two loss terms are named {name}: give the distillation '
                                   'losses distinct names')
                losses[name] = value
        return losses

    def teacher_outputs(self, batch_inputs: Tensor) -> Dict[str, object]:
        """The recorded outputs of the frozen teacher (its dense head only if a loss reads it).

        Under ``teacher_autocast`` they are computed in reduced precision and returned in float32.
        """
        with autocast_or_not(batch_inputs.device.type, self.teacher_autocast):
            outputs = recorded_outputs(self.teacher, self.requires, batch_inputs)
        return outputs if self.teacher_autocast is None else to_float32(outputs)

    def distill_batch(self, batch_inputs: Tensor, batch_data_samples: list) -> DistillBatch:
        """The batch as the loss modules see it, with the data preprocessor's normalisation."""
        return DistillBatch(
            inputs=batch_inputs, data_samples=batch_data_samples,
            mean=self.data_preprocessor.mean, std=self.data_preprocessor.std,
            bgr_to_rgb=bool(getattr(self.data_preprocessor, '_channel_conversion', False)))

    def predict(self, batch_inputs: Tensor, batch_data_samples: list, rescale: bool = True):
        return self.student.predict(batch_inputs, batch_data_samples, rescale=rescale)

    def _forward(self, batch_inputs: Tensor, batch_data_samples: Optional[list] = None):
        return self.student._forward(batch_inputs, batch_data_samples)

    def extract_feat(self, batch_inputs: Tensor):
        return self.student.extract_feat(batch_inputs)


def all_finite(outputs: Dict[str, object]) -> bool:
    """Whether every tensor in a dict of (nested) recorded outputs is finite."""
    def tensors(value) -> List[Tensor]:
        if isinstance(value, Tensor):
            return [value]
        if isinstance(value, (list, tuple)):
            return [t for v in value for t in tensors(v)]
        return []
    return all(bool(torch.isfinite(t).all()) for v in outputs.values() for t in tensors(v))


def check_compatible(student: nn.Module, teacher: nn.Module, losses: Sequence[nn.Module]) -> None:
    """Fail at build time, with both values named, when teacher and student cannot be paired."""
    classes = num_classes(student), num_classes(teacher)
    if None not in classes and classes[0] != classes[1]:
        raise ValueError(f'the teacher predicts {classes[1]} classes and the student '
                         f'{classes[0]}: they must be trained on the same classes')
    necks = getattr(student, 'neck', None), getattr(teacher, 'neck', None)
    levels = [getattr(neck, 'num_outs', None) for neck in necks]
    if None not in levels and levels[0] != levels[1]:
        raise ValueError(f'the teacher neck has {levels[1]} levels and the student neck '
                         f'{levels[0]}: distilled levels must pair up')
    channels = [getattr(neck, 'out_channels', None) for neck in necks]
    for loss in losses:
        for side, have in (('student', channels[0]), ('teacher', channels[1])):
            want = getattr(loss, f'{side}_channels', None)
            if want is not None and have is not None and want != have:
                raise ValueError(f'{type(loss).__name__}: {side}_channels={want} but the '
                                 f'{side} neck has {have} channels')
    if not math.isfinite(sum(float(p.sum()) for p in teacher.parameters())):
        raise ValueError('the teacher checkpoint holds non-finite weights')
