"""DetectionDistiller: composition, frozen teacher, build-time checks, export, mmrotate."""
import copy
import os.path as osp

import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from ifkd_mm.distillation import DetectionDistiller, DistillLoss
from ifkd_mm.registry import MODELS, register_model

from .conftest import REPO

DEMO = osp.join(REPO, 'configs/demo/retinanet_r18_fpn_demo_synthetic-shiprs.py')


@register_model
class NaNTestLoss(DistillLoss):
    """A loss module that goes wrong, to check the distiller's non-finite guard."""

    requires = ('neck', )

    def forward(self, student, teacher, batch):
        return {'loss_nan': student['neck'][0].sum() * float('nan')}


def demo_model(**changes) -> dict:
    """The demo detector's model config (narrow RetinaNet R18), with dotted-key changes."""
    model = copy.deepcopy(Config.fromfile(DEMO).model)
    for key, value in changes.items():
        target = model
        *path, last = key.split('.')
        for part in path:
            target = target[part]
        target[last] = value
    return model


def save_teacher(tmp_path, model_cfg: dict, name='teacher.pth', corrupt=False) -> str:
    teacher = MODELS.build(model_cfg)
    state = teacher.state_dict()
    if corrupt:
        first = next(k for k, v in state.items() if v.is_floating_point())
        state[first] = torch.full_like(state[first], float('nan'))
    path = str(tmp_path / name)
    torch.save(dict(state_dict=state, meta=dict()), path)
    return path


def batch(num_images=2, size=64, num_classes=4):
    """A preprocessed batch: normalised images and data samples with GT boxes."""
    torch.manual_seed(0)
    inputs = torch.randn(num_images, 3, size, size)
    samples = []
    for _ in range(num_images):
        sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                             pad_shape=(size, size), scale_factor=(1.0, 1.0),
                                             batch_input_shape=(size, size)))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor([[8., 8., 40., 30.], [20., 30., 60., 60.]]),
            labels=torch.tensor([0, num_classes - 1]))
        samples.append(sample)
    return inputs, samples


@pytest.fixture
def distiller(tmp_path):
    teacher_cfg = demo_model()
    checkpoint = save_teacher(tmp_path, teacher_cfg)
    return MODELS.build(dict(
        type='DetectionDistiller', student=demo_model(),
        teacher=dict(config=teacher_cfg, checkpoint=checkpoint),
        distill_losses=[dict(type='FitNetLoss', student_channels=128, teacher_channels=128),
                        dict(type='FRSLoss', student_channels=128, teacher_channels=128,
                             warmup_iters=0)]))


def test_teacher_is_frozen_outside_the_module_tree(distiller):
    assert isinstance(distiller, DetectionDistiller)
    assert not any(name.startswith('teacher') for name, _ in distiller.named_parameters())
    assert not any(key.startswith('teacher') for key in distiller.state_dict())
    assert all(not p.requires_grad for p in distiller.teacher.parameters())
    distiller.train()
    assert distiller.student.training and not distiller.teacher.training
    assert all(not m.training for m in distiller.teacher.modules())
    distiller.to(torch.float64)
    assert next(distiller.teacher.parameters()).dtype == torch.float64
    distiller.to(torch.float32)


def test_loss_adds_distillation_terms_and_gradients_skip_the_teacher(distiller):
    distiller.train()
    teacher_bn = copy.deepcopy(distiller.teacher.backbone.bn1.running_mean)
    losses = distiller.loss(*batch())
    assert {'loss_cls', 'loss_bbox', 'loss_fitnet', 'loss_frs_feat', 'loss_frs_cls'} <= set(losses)
    total, _ = distiller.parse_losses(losses)
    total.backward()
    assert all(p.grad is None for p in distiller.teacher.parameters())
    assert distiller.student.backbone.conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in distiller.distill_losses.parameters())
    torch.testing.assert_close(distiller.teacher.backbone.bn1.running_mean, teacher_bn)


def test_distillation_loss_changes_the_student_gradient(distiller):
    inputs, samples = batch()
    distiller.train()
    losses = distiller.loss(inputs, samples)
    only_student, _ = distiller.parse_losses(
        {k: v for k, v in losses.items() if k in ('loss_cls', 'loss_bbox')})
    grad_student, = torch.autograd.grad(only_student, distiller.student.neck.fpn_convs[0].conv.weight,
                                        retain_graph=True)
    grad_total, = torch.autograd.grad(only_student + losses['loss_fitnet'],
                                      distiller.student.neck.fpn_convs[0].conv.weight)
    assert not torch.allclose(grad_student, grad_total)


def test_prediction_is_the_student_alone(distiller):
    distiller.eval()
    inputs, samples = batch()
    ours = distiller.predict(inputs, copy.deepcopy(samples))
    plain = distiller.student.predict(inputs, copy.deepcopy(samples))
    for a, b in zip(ours, plain):
        torch.testing.assert_close(a.pred_instances.bboxes, b.pred_instances.bboxes)
    torch.testing.assert_close(distiller._forward(inputs)[0][0],
                               distiller.student._forward(inputs)[0][0])


def test_faster_rcnn_distils_the_rpn_objectness(tmp_path):
    model = copy.deepcopy(Config.fromfile(
        osp.join(REPO, 'configs/detectors/faster-rcnn_r18_fpn_100e_shiprs.py')).model)
    model.backbone.init_cfg = None
    model.roi_head.bbox_head.num_classes = 4
    checkpoint = save_teacher(tmp_path, model)
    distiller = MODELS.build(dict(
        type='DetectionDistiller', student=model, teacher=dict(config=model, checkpoint=checkpoint),
        distill_losses=[dict(type='FRSLoss', warmup_iters=0)]))
    distiller.train()
    seen = {}
    original = distiller.distill_losses[0].forward

    def spy(student, teacher, batch_):
        seen.update(student=student, teacher=teacher)
        return original(student, teacher, batch_)

    distiller.distill_losses[0].forward = spy
    losses = distiller.loss(*batch(size=96))
    assert 'loss_rpn_cls' in losses and 'loss_frs_cls' in losses
    # RPN objectness: 3 anchors x 1 class per location, 5 levels
    assert [t.shape[1] for t in seen['teacher']['cls_scores']] == [3] * 5
    assert not any(t.requires_grad for t in seen['teacher']['cls_scores'])


@pytest.mark.parametrize('change, error, message', [
    (dict(**{'bbox_head.num_classes': 5}), ValueError, 'teacher predicts 5 classes'),
    (dict(**{'neck.num_outs': 4}), ValueError, 'teacher neck has 4 levels'),
])
def test_mismatched_teacher_fails_at_build_time(tmp_path, change, error, message):
    teacher_cfg = demo_model(**change)
    checkpoint = save_teacher(tmp_path, teacher_cfg)
    with pytest.raises(error, match=message):
        MODELS.build(dict(type='DetectionDistiller', student=demo_model(),
                          teacher=dict(config=teacher_cfg, checkpoint=checkpoint)))


def test_loss_channels_are_checked_against_the_necks(tmp_path):
    checkpoint = save_teacher(tmp_path, demo_model())
    with pytest.raises(ValueError, match='FitNetLoss: student_channels=256 but the student neck '
                                         'has 128 channels'):
        MODELS.build(dict(type='DetectionDistiller', student=demo_model(),
                          teacher=dict(config=demo_model(), checkpoint=checkpoint),
                          distill_losses=[dict(type='FitNetLoss', student_channels=256)]))


def test_teacher_checkpoint_problems_are_named(tmp_path):
    student = demo_model()
    with pytest.raises(FileNotFoundError, match='teacher.checkpoint: no checkpoint file .*nope'):
        MODELS.build(dict(type='DetectionDistiller', student=student,
                          teacher=dict(config=student, checkpoint=str(tmp_path / 'nope.pth'))))
    with pytest.raises(ValueError, match='teacher.checkpoint is required'):
        MODELS.build(dict(type='DetectionDistiller', student=student,
                          teacher=dict(config=student)))
    other = save_teacher(tmp_path, demo_model(**{'backbone.depth': 34}), name='r34.pth')
    with pytest.raises(RuntimeError, match='r34.pth does not fit teacher.config'):
        MODELS.build(dict(type='DetectionDistiller', student=student,
                          teacher=dict(config=student, checkpoint=other)))
    broken = save_teacher(tmp_path, student, name='nan.pth', corrupt=True)
    with pytest.raises(ValueError, match='non-finite weights'):
        MODELS.build(dict(type='DetectionDistiller', student=student,
                          teacher=dict(config=student, checkpoint=broken)))


def test_non_finite_distillation_loss_is_reported_by_name(tmp_path):
    checkpoint = save_teacher(tmp_path, demo_model())
    distiller = MODELS.build(dict(type='DetectionDistiller', student=demo_model(),
                                  teacher=dict(config=demo_model(), checkpoint=checkpoint),
                                  distill_losses=[dict(type='NaNTestLoss')]))
    distiller.train()
    with pytest.raises(FloatingPointError, match='NaNTestLoss returned a non-finite loss_nan'):
        distiller.loss(*batch())


def test_export_keeps_exactly_the_student(distiller, tmp_path):
    from tools.export_student import student_checkpoint

    exported = student_checkpoint(dict(state_dict=distiller.state_dict(), meta=dict(epoch=3)))
    plain = MODELS.build(demo_model())
    assert set(exported['state_dict']) == set(plain.state_dict())
    plain.load_state_dict(exported['state_dict'], strict=True)
    assert exported['meta']['epoch'] == 3
    with pytest.raises(KeyError, match='not a DetectionDistiller checkpoint'):
        student_checkpoint(dict(state_dict=plain.state_dict()))


def test_rotated_detectors_distil_in_the_mmrotate_scope(tmp_path):
    from mmrotate.structures.bbox import RotatedBoxes

    import mmrotate

    init_default_scope('mmrotate')
    model = copy.deepcopy(Config.fromfile(osp.join(
        osp.dirname(mmrotate.__file__), '.mim/configs/rotated_retinanet',
        'rotated-retinanet-rbox-le90_r50_fpn_1x_dota.py')).model)
    model.backbone.update(depth=18, init_cfg=None)
    model.neck.in_channels = [64, 128, 256, 512]
    checkpoint = save_teacher(tmp_path, model)
    distiller = MODELS.build(dict(
        type='DetectionDistiller', student=model, teacher=dict(config=model, checkpoint=checkpoint),
        distill_losses=[dict(type='FitNetLoss')]))
    inputs, samples = batch(size=96)
    for sample in samples:
        sample.gt_instances.bboxes = RotatedBoxes(torch.tensor([[30., 30., 30., 12., 0.3],
                                                                [60., 60., 20., 10., -0.5]]))
        sample.gt_instances.labels = torch.tensor([0, 3])
    distiller.train()
    losses = distiller.loss(inputs, samples)
    assert {'loss_cls', 'loss_bbox', 'loss_fitnet'} <= set(losses)
    total, _ = distiller.parse_losses(losses)
    assert torch.isfinite(total)


def distillers_sharing_a_teacher(tmp_path, *teacher_autocasts):
    """One distiller (FitNet + FRS) per ``teacher_autocast`` value, all with the same teacher."""
    checkpoint = save_teacher(tmp_path, demo_model())
    return [MODELS.build(dict(
        type='DetectionDistiller', student=demo_model(),
        teacher=dict(config=demo_model(), checkpoint=checkpoint), teacher_autocast=autocast,
        distill_losses=[dict(type='FitNetLoss', student_channels=128, teacher_channels=128),
                        dict(type='FRSLoss', student_channels=128, teacher_channels=128,
                             warmup_iters=0)])) for autocast in teacher_autocasts]


def test_teacher_autocast_off_leaves_the_losses_bit_identical(distiller):
    from ifkd_mm.distillation.base import DistillBatch
    from ifkd_mm.distillation.distiller import dense_head, recording

    assert distiller.teacher_autocast is None
    distiller.train()
    inputs, samples = batch()
    losses = distiller.loss(inputs, samples)
    # reference: the full-precision step written out, outside the distiller
    student_out, teacher_out = {}, {}
    with recording(distiller.student, distiller.requires, student_out):
        reference = distiller.student.loss(inputs, samples)
    with torch.no_grad(), recording(distiller.teacher, distiller.requires, teacher_out):
        dense_head(distiller.teacher)(distiller.teacher.extract_feat(inputs))
    preprocessor = distiller.data_preprocessor
    distill_batch = DistillBatch(inputs=inputs, data_samples=samples, mean=preprocessor.mean,
                                 std=preprocessor.std, bgr_to_rgb=preprocessor._channel_conversion)
    for module in distiller.distill_losses:
        reference.update(module(student_out, teacher_out, distill_batch))
    assert set(losses) == set(reference)
    for name, value in losses.items():
        values = value if isinstance(value, list) else [value]
        expected = reference[name] if isinstance(value, list) else [reference[name]]
        assert all(torch.equal(a, b) for a, b in zip(values, expected)), name


def flat_tensors(outputs: dict) -> list:
    """The tensors of recorded outputs, in order (nested lists and tuples flattened)."""
    def flat(value):
        if isinstance(value, torch.Tensor):
            return [value]
        return [t for item in value for t in flat(item)]
    return [t for name in sorted(outputs) for t in flat(outputs[name])]


def test_teacher_autocast_bfloat16_runs_the_teacher_in_reduced_precision(tmp_path):
    full, reduced = distillers_sharing_a_teacher(tmp_path, None, 'bfloat16')
    assert reduced.teacher_autocast is torch.bfloat16
    assert next(reduced.teacher.parameters()).dtype == torch.float32
    inputs, samples = batch()
    with torch.no_grad():
        exact, approx = full.teacher_outputs(inputs), reduced.teacher_outputs(inputs)
    assert set(exact) == set(approx) == {'neck', 'cls_scores', 'bbox_preds', 'dense_head'}
    # the head's outputs stay shared between 'dense_head' and 'cls_scores' / 'bbox_preds'
    assert approx['cls_scores'] is approx['dense_head'][0]
    assert approx['bbox_preds'] is approx['dense_head'][1]
    exact_tensors, approx_tensors = flat_tensors(exact), flat_tensors(approx)
    assert len(exact_tensors) == len(approx_tensors)
    for a, b in zip(approx_tensors, exact_tensors):
        assert a.dtype == torch.float32 and a.shape == b.shape
        relative = float((a - b).norm() / b.norm())
        # bfloat16 keeps 8 significant bits (rounding 2**-9 per operation): about 1% here
        assert 0 < relative < 0.03, relative
    reduced.train()
    losses = reduced.loss(inputs, samples)
    total, _ = reduced.parse_losses(losses)
    total.backward()
    assert torch.isfinite(total)
    assert reduced.student.neck.fpn_convs[0].conv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in reduced.teacher.parameters())


def test_teacher_autocast_rejects_an_unknown_dtype(tmp_path):
    # checked before the teacher is built: its checkpoint is never read
    with pytest.raises(ValueError, match=r"teacher_autocast must be None or one of "
                                         r"\['bfloat16', 'float16'\], got 'float8'"):
        MODELS.build(dict(type='DetectionDistiller', student=demo_model(),
                          teacher=dict(config=demo_model(), checkpoint=str(tmp_path / 'no.pth')),
                          teacher_autocast='float8'))


def initial_student(config: str, work_dir, data_root: str, seed: int, **options) -> dict:
    """The student weights a runner starts ``config`` from (built, initialised, not trained)."""
    from mmengine.runner import Runner

    cfg = Config.fromfile(config)
    cfg.work_dir = str(work_dir)
    cfg.merge_from_dict({'randomness.seed': seed, 'train_dataloader.dataset.data_root': data_root,
                         'train_dataloader.num_workers': 0,
                         'train_dataloader.persistent_workers': False, **options})
    runner = Runner.from_cfg(cfg)
    runner._train_loop = runner.build_train_loop(runner._train_loop)
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner._init_model_weights()
    model = getattr(runner.model, 'student', runner.model)
    return {key: value.clone() for key, value in model.state_dict().items()}


def test_distilled_student_starts_from_the_weights_of_the_student_alone(tmp_path,
                                                                        synthetic_root):
    """Same seed, same initial student: the teacher's and the adapters' construction (which draw
    random numbers) do not shift the student's initialisation."""
    ship = osp.join(synthetic_root, 'ShipRSImageNet') + '/'
    teacher_cfg = osp.join(REPO, 'configs/demo/retinanet_r34_fpn_demo_synthetic-shiprs.py')
    teacher = save_teacher(tmp_path, copy.deepcopy(Config.fromfile(teacher_cfg).model))
    distilled = osp.join(REPO, 'configs/demo/ifkd_retinanet_r34-r18_fpn_demo_synthetic-shiprs.py')
    alone = initial_student(DEMO, tmp_path / 'alone', ship, seed=5)
    paired = initial_student(distilled, tmp_path / 'distilled', ship, seed=5,
                             **{'model.teacher.checkpoint': teacher})
    other = initial_student(DEMO, tmp_path / 'other', ship, seed=6)
    assert alone.keys() == paired.keys()
    assert all(torch.equal(alone[key], paired[key]) for key in alone)
    weights = [key for key in alone if key.endswith('conv.weight') or key.endswith('conv1.weight')]
    assert weights and not any(torch.equal(alone[key], other[key]) for key in weights)
