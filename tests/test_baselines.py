"""The Table 3 baselines (FitNet, AT, FGD, FRS): closed forms, gradient flow, registry builds."""
import math
from typing import Dict, List, Optional, Sequence

import pytest
import torch

import ifkd_mm  # noqa: F401  (registers the modules)
from ifkd_mm.distillation import DistillBatch
from ifkd_mm.distillation.baselines import (ATLoss, FGDLoss, FitNetLoss, FRSLoss, GlobalRelation,
                                            at_loss, attention_loss, attention_map, box_masks,
                                            channel_attention, focal_feature_losses,
                                            hint_loss, horizontal_boxes, masked_cls_loss,
                                            masked_feature_loss, richness_mask,
                                            spatial_attention, warmup_factor)
from ifkd_mm.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.logging import MessageHub
from mmengine.structures import InstanceData

SIZES = (32, 16, 8, 4, 2)
INPUT = 256
ANCHORS, CLASSES = 9, 4


def make_batch(boxes: Sequence[torch.Tensor], size=(INPUT, INPUT)) -> DistillBatch:
    """A batch of zero images of ``size`` with the given GT boxes (first as mmdet box type)."""
    samples = []
    for index, bboxes in enumerate(boxes):
        sample = DetDataSample()
        sample.set_metainfo(dict(img_shape=(size[0] - 6, size[1] - 16), pad_shape=tuple(size),
                                 batch_input_shape=tuple(size)))
        sample.gt_instances = InstanceData(
            bboxes=HorizontalBoxes(bboxes) if index == 0 else bboxes,
            labels=torch.zeros(len(bboxes), dtype=torch.long))
        samples.append(sample)
    return DistillBatch(inputs=torch.zeros(len(boxes), 3, *size), data_samples=samples,
                        mean=torch.zeros(1, 3, 1, 1), std=torch.ones(1, 3, 1, 1))


def realistic_batch() -> DistillBatch:
    return make_batch([torch.tensor([[10., 20., 90., 70.], [100., 100., 240., 250.]]),
                       torch.zeros(0, 4)])


def pyramid(channels: int, seed: int, grad: bool = False, sizes=SIZES) -> List[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(2, channels, s, s, generator=gen).requires_grad_(grad) for s in sizes]


def head(seed: int, grad: bool = False) -> List[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(2, ANCHORS * CLASSES, s, s, generator=gen) - 3).requires_grad_(grad)
            for s in SIZES]


def outputs(neck: List[torch.Tensor], cls: Optional[List[torch.Tensor]] = None) -> Dict:
    return dict(neck=tuple(neck)) if cls is None else dict(neck=tuple(neck), cls_scores=cls)


def identity_(conv: torch.nn.Conv2d) -> None:
    """Make a (square) conv the identity map."""
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        centre = conv.kernel_size[0] // 2
        for c in range(conv.in_channels):
            conv.weight[c, c, centre, centre] = 1


# ----------------------------------------------------------------------------------- FitNet
def test_fitnet_is_mse_of_regressed_student():
    s = torch.tensor([[[[1., 2.], [3., 4.]]]])
    assert hint_loss(s, torch.zeros_like(s)).item() == pytest.approx(7.5)
    loss = FitNetLoss(student_channels=1, teacher_channels=1, num_levels=2, loss_weight=2.0)
    for conv in loss.regressors:
        identity_(conv)
    out = loss(outputs([s, s[..., :1, :1]]), outputs([torch.zeros_like(s), s[..., :1, :1]]),
               make_batch([torch.zeros(0, 4)]))
    assert out['loss_fitnet'].item() == pytest.approx(2.0 * 7.5)
    assert loss.regressors[0].kernel_size == (1, 1)


# --------------------------------------------------------------------------------------- AT
def test_attention_map_closed_form():
    features = torch.tensor([[[[3., 0.]], [[4., -1.]]]])  # (1, 2, 1, 2)
    expected = torch.tensor([[25., 1.]]) / math.sqrt(626.)
    assert torch.allclose(attention_map(features), expected)


def test_at_loss_zero_positive_and_scale_invariant():
    s, t = pyramid(8, 0)[2], pyramid(8, 1)[2]
    assert at_loss(s, s).item() == 0
    assert at_loss(s, t).item() > 0
    assert at_loss(5 * s, t).item() == pytest.approx(at_loss(s, t).item(), rel=1e-5)
    assert at_loss(s, 0.1 * s).item() == pytest.approx(0, abs=1e-12)
    # one-hot attention at different locations: squared difference 1 at 2 locations, mean 1
    one = torch.tensor([[[[1., 0.]]]])
    out = ATLoss()(outputs([one]), outputs([one.flip(-1)]), make_batch([torch.zeros(0, 4)]))
    assert out['loss_at'].item() == pytest.approx(1000 / 2 * 1.0)


# -------------------------------------------------------------------------------------- FGD
def test_fgd_box_masks_closed_form():
    box = torch.tensor([[16., 8., 48., 40.]])  # stride 8 -> cells rows 1..4, cols 2..5
    fg, bg = box_masks(box, (8, 8), (64, 64))
    inside = torch.zeros(8, 8, dtype=torch.bool)
    inside[1:5, 2:6] = True
    assert torch.allclose(fg[inside], torch.full((16, ), 1 / 16))
    assert (fg[~inside] == 0).all()
    assert torch.allclose(bg[~inside], torch.full((48, ), 1 / 48))
    assert (bg[inside] == 0).all()
    assert fg.sum().item() == pytest.approx(1) and bg.sum().item() == pytest.approx(1)


def test_fgd_box_masks_overlap_fractional_empty_and_non_square():
    big, small = [0., 0., 32., 32.], [4., 4., 12., 12.]  # small -> [0.5, 1.5] cells: 2 x 2
    fg, _ = box_masks(torch.tensor([big, small]), (8, 8), (64, 64))
    assert torch.allclose(fg[:2, :2], torch.full((2, 2), 1 / 4))  # the smaller box wins
    assert fg[3, 3].item() == pytest.approx(1 / 16)
    fg, bg = box_masks(torch.zeros(0, 4), (4, 4), (64, 64))
    assert (fg == 0).all() and torch.allclose(bg, torch.full((4, 4), 1 / 16))
    fg, _ = box_masks(torch.tensor([[0., 0., 64., 16.]]), (4, 8), (64, 128))  # 8 x 1 cells of 4x8
    assert torch.allclose(fg[0, :4], torch.full((4, ), 1 / 4)) and fg[1:].sum() == 0


def test_fgd_rotated_boxes_use_their_outer_box():
    from mmrotate.structures.bbox import RotatedBoxes
    batch = make_batch([torch.zeros(0, 4)], size=(64, 64))
    batch.data_samples[0].gt_instances = InstanceData(
        bboxes=RotatedBoxes(torch.tensor([[32., 32., 16., 16., math.pi / 4]])),
        labels=torch.zeros(1, dtype=torch.long))
    outer = horizontal_boxes(batch.data_samples[0])
    half = 8 * math.sqrt(2)
    assert torch.allclose(outer, torch.tensor([[32 - half, 32 - half, 32 + half, 32 + half]]))


def test_fgd_attention_closed_form():
    features = torch.tensor([[[[0., 1.]], [[0., -1.]]]])  # channel mean of |F|: [0, 1]
    expected = 2 * torch.softmax(torch.tensor([0., 2.]), 0)  # H*W * softmax(./T), T = 0.5
    assert torch.allclose(spatial_attention(features, 0.5), expected.view(1, 1, 2))
    assert torch.allclose(channel_attention(features, 0.5), torch.ones(1, 2))
    f = pyramid(16, 0)[1]
    assert spatial_attention(f, 0.5).sum((1, 2)).allclose(torch.full((2, ), 16. * 16))
    assert channel_attention(f, 0.5).sum(1).allclose(torch.full((2, ), 16.))


def test_fgd_focal_and_attention_losses_closed_form():
    teacher = torch.ones(1, 2, 4, 4)  # uniform attention: A^S = A^C = 1
    fg, bg = box_masks(torch.tensor([[0., 0., 32., 32.]]), (4, 4), (64, 64))
    fg_loss, bg_loss = focal_feature_losses(teacher + 1, teacher, fg[None], bg[None], 0.5)
    assert fg_loss.item() == pytest.approx(2.0) and bg_loss.item() == pytest.approx(2.0)
    zero = focal_feature_losses(teacher, teacher, fg[None], bg[None], 0.5)
    assert all(z.item() == 0 for z in zero)
    assert attention_loss(teacher, teacher, 0.5).item() == 0
    assert attention_loss(teacher * torch.arange(16.).view(1, 1, 4, 4), teacher, 0.5) > 0


def test_fgd_global_relation_is_gcblock():
    relation = GlobalRelation(8)
    f = pyramid(8, 0)[2]
    assert torch.equal(relation(f), f)  # zero-initialised last conv
    with torch.no_grad():
        relation.context_conv.weight.zero_()
    assert torch.allclose(relation.context(f), f.mean((2, 3), keepdim=True), atol=1e-6)
    with torch.no_grad():
        relation.transform[-1].weight.fill_(0.1)
    assert not torch.allclose(relation(f), f)


def test_fgd_zero_for_identical_features():
    feats = pyramid(256, 0)
    out = FGDLoss()(outputs(feats), outputs(feats), realistic_batch())
    assert set(out) == {'loss_fgd_fg', 'loss_fgd_bg', 'loss_fgd_at', 'loss_fgd_global'}
    assert all(v.item() == pytest.approx(0, abs=1e-9) for v in out.values())


# -------------------------------------------------------------------------------------- FRS
def test_frs_mask_is_max_sigmoid_score():
    cls = torch.tensor([[[[0., 3.]], [[-2., 5.]], [[1., -1.]]]])  # (1, 3, 1, 2)
    expected = torch.tensor([[[torch.sigmoid(torch.tensor(1.)), torch.sigmoid(torch.tensor(5.))]]])
    assert torch.allclose(richness_mask(cls), expected)


def test_frs_masked_losses_closed_form():
    mask = torch.tensor([[[0.5, 1.0]]])
    t = torch.zeros(1, 2, 1, 2)
    s = torch.tensor([[[[2., 1.]], [[0., 1.]]]])  # squared error per location: [4, 2]
    assert masked_feature_loss(s, t, mask).item() == pytest.approx((0.5 * 4 + 1 * 2) / 1.5)
    assert masked_feature_loss(t, t, mask).item() == 0
    logits = torch.tensor([[[[0.3, -2.]], [[1.5, 4.]]]], requires_grad=True)
    loss = masked_cls_loss(logits, logits.detach(), mask)
    p = logits.detach().sigmoid()
    entropy = -(p * p.log() + (1 - p) * (1 - p).log())
    assert loss.item() == pytest.approx(((entropy * mask[:, None]).sum() / mask.sum()).item())
    loss.backward()  # equal logits are the minimum: no gradient
    assert logits.grad.abs().max().item() < 1e-7


def test_frs_identical_features_through_identity_adapters():
    feats, cls = pyramid(256, 0), head(0)
    loss = FRSLoss(warmup_iters=0)
    for conv in loss.adapters:
        identity_(conv)
    out = loss(outputs(feats, cls), outputs(feats, cls), realistic_batch())
    assert out['loss_frs_feat'].item() == pytest.approx(0, abs=1e-9)


def test_frs_warmup_follows_runner_iteration():
    hub = MessageHub.get_instance('test_frs_warmup')
    try:
        assert warmup_factor(500) == 1.0
        hub.update_info('iter', 250)
        assert warmup_factor(500) == 0.5 and warmup_factor(0) == 1.0
        student, teacher = outputs(pyramid(256, 0), head(0)), outputs(pyramid(256, 1), head(1))
        torch.manual_seed(0)
        ramped = FRSLoss()(student, teacher, realistic_batch())
        torch.manual_seed(0)
        full = FRSLoss(warmup_iters=0)(student, teacher, realistic_batch())
        for name in full:
            assert ramped[name].item() == pytest.approx(0.5 * full[name].item(), rel=1e-5)
    finally:
        hub.pop_info('iter')


def test_frs_rejects_different_heads():
    student = outputs(pyramid(256, 0), head(0))
    teacher = outputs(pyramid(256, 1), [c[:, :ANCHORS * 2] for c in head(1)])
    with pytest.raises(ValueError, match='anchors or classes'):
        FRSLoss()(student, teacher, realistic_batch())


# ------------------------------------------------------------------------ all the baselines
CONFIGS = [
    (dict(type='FitNetLoss', student_channels=128), {'loss_fitnet'}),
    (dict(type='ATLoss'), {'loss_at'}),
    (dict(type='FGDLoss', student_channels=128),
     {'loss_fgd_fg', 'loss_fgd_bg', 'loss_fgd_at', 'loss_fgd_global'}),
    (dict(type='FRSLoss', student_channels=128, warmup_iters=0),
     {'loss_frs_feat', 'loss_frs_cls'}),
]


def student_channels(cfg: dict) -> int:
    return cfg.get('student_channels', 256)


@pytest.mark.parametrize('cfg,names', CONFIGS, ids=[c['type'] for c, _ in CONFIGS])
def test_builds_from_config_and_returns_finite_scalars(cfg, names):
    loss = MODELS.build(dict(cfg))
    student = outputs(pyramid(student_channels(cfg), 0), head(0))
    teacher = outputs(pyramid(256, 1), head(1))
    out = loss(student, teacher, realistic_batch())
    assert set(out) == names
    for name, value in out.items():
        assert value.dim() == 0 and torch.isfinite(value) and value.item() > 0, name
    if hasattr(loss, 'student_channels'):
        assert (loss.student_channels, loss.teacher_channels) == (student_channels(cfg), 256)


@pytest.mark.parametrize('cfg,names', CONFIGS, ids=[c['type'] for c, _ in CONFIGS])
def test_gradients_reach_student_and_adapters_not_teacher(cfg, names):
    loss = MODELS.build(dict(cfg))
    s_neck, s_cls = pyramid(student_channels(cfg), 0, grad=True), head(0, grad=True)
    t_neck, t_cls = pyramid(256, 1, grad=True), head(1, grad=True)
    out = loss(outputs(s_neck, s_cls), outputs(t_neck, t_cls), realistic_batch())
    sum(out.values()).backward()
    for t in t_neck + t_cls:
        assert t.grad is None
    for s in s_neck:
        assert s.grad is not None and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0
    if 'cls_scores' in loss.requires:
        assert all(s.grad is not None and s.grad.abs().sum() > 0 for s in s_cls)
    adapters = {'FitNetLoss': 'regressors', 'FRSLoss': 'adapters', 'FGDLoss': 'align'}
    if cfg['type'] in adapters:
        for conv in getattr(loss, adapters[cfg['type']]):
            assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
    if cfg['type'] == 'FGDLoss':
        for relation in (*loss.student_relations, *loss.teacher_relations):
            assert relation.transform[-1].weight.grad.abs().sum() > 0


def test_fgd_has_no_align_for_equal_channels():
    assert FGDLoss(student_channels=256, teacher_channels=256).align is None


@pytest.mark.parametrize('cls', [FitNetLoss, FGDLoss, FRSLoss])
def test_level_count_must_match(cls):
    student = outputs(pyramid(256, 0)[:4], head(0)[:4])
    teacher = outputs(pyramid(256, 1)[:4], head(1)[:4])
    with pytest.raises(ValueError, match='5 levels'):
        cls()(student, teacher, realistic_batch())


def test_teacher_and_student_levels_must_pair():
    student, teacher = outputs(pyramid(256, 0)), outputs(pyramid(256, 1)[:4])
    with pytest.raises(ValueError, match='student has 5 levels and the teacher 4'):
        ATLoss()(student, teacher, realistic_batch())
