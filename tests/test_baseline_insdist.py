"""InsDist (IFKD Table 3 baseline): instance mask, masked distances, RoIAlign instance relations,
gradient flow, the adapters' limits and the two 100e configs."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from ifkd_mm.distillation.baselines import InsDistLoss
from ifkd_mm.distillation.baselines.insdist import (box_cells, instance_features, instance_mask,
                                                    level_strides, masked_feature_distances,
                                                    normalised_energy, relation_loss,
                                                    relation_matrix, roi_levels)
from ifkd_mm.registry import MODELS, ROTATED_MODELS

from .conftest import REPO
from .test_baselines import identity_, make_batch, outputs, pyramid, realistic_batch
from .test_configs import teacher_checkpoints  # noqa: F401  (fixture)
from .test_distiller import batch as detection_batch
from .test_ifkd import one_thread, smooth_features  # noqa: F401  (autouse fixture)


def ref_mask(feature: np.ndarray, boxes, stride: int, threshold: float) -> np.ndarray:
    """The instance mask with explicit loops: truncated cells, box mean, dot, min-max."""
    channels, height, width = feature.shape
    mask = np.zeros((height, width), dtype=bool)
    for box in boxes:
        x0, y0, x1, y1 = (int(v / stride) for v in box)
        x0, x1 = min(max(x0, 0), width - 1), min(max(x1, 0), width - 1)
        y0, y1 = min(max(y0, 0), height - 1), min(max(y1, 0), height - 1)
        if x0 == x1 or y0 == y1:
            mask[y0, x0] = True
            continue
        proto = np.zeros(channels)
        for y in range(y0, y1 + 1):
            for x in range(x0, x1 + 1):
                proto += feature[:, y, x]
        proto /= (y1 - y0 + 1) * (x1 - x0 + 1)
        energy = np.array([[feature[:, y, x] @ proto for x in range(width)]
                           for y in range(height)])
        mask |= (energy - energy.min()) / (energy.max() - energy.min()) > threshold
    return mask


def three_instance_batch():
    """Image 0: three boxes (scales 63, 145, 63: levels 0, 1, 0), image 1: none."""
    return make_batch([torch.tensor([[10., 20., 90., 70.], [100., 100., 240., 250.],
                                     [30., 150., 80., 230.]]), torch.zeros(0, 4)])


def ref_distances(student: np.ndarray, teacher: np.ndarray, mask: np.ndarray):
    fg = bg = 0.0
    for b, c, y, x in np.ndindex(*teacher.shape):
        sq = (teacher[b, c, y, x] - student[b, c, y, x]) ** 2
        fg, bg = (fg + sq, bg) if mask[b, y, x] else (fg, bg + sq)
    return np.sqrt(fg + 1e-8), np.sqrt(bg + 1e-8)


# ------------------------------------------------------------------------------ geometry
def test_level_strides_double_from_the_finest_level():
    assert level_strides([(32, 32), (16, 16), (8, 8), (4, 4), (2, 2)], (256, 256)) == \
        [8, 16, 32, 64, 128]
    assert level_strides([(100, 167), (50, 84), (25, 42), (13, 21), (7, 11)], (800, 1333)) == \
        [8, 16, 32, 64, 128]
    assert level_strides([(8, 8), (4, 4), (2, 2), (1, 1), (1, 1)], (64, 64))[3:] == [64, 128]
    assert level_strides([(64, 48), (32, 24)], (256, 192)) == [4, 8]  # from P2


def test_box_cells_truncate_and_clamp():
    boxes = torch.tensor([[10., 20., 90., 70.], [250., 250., 400., 300.]])
    assert box_cells(boxes, 32, (8, 6)).tolist() == [[0, 0, 2, 2], [5, 7, 5, 7]]


# -------------------------------------------------------------------------- instance mask
def test_instance_mask_matches_explicit_loops():
    gen = torch.Generator().manual_seed(0)
    feature = torch.randn(3, 6, 7, generator=gen)
    boxes = torch.tensor([[8., 16., 40., 40.], [50., 0., 54., 20.]])  # 2nd: one cell wide
    for threshold in (0.3, 0.5, 0.8):
        got = instance_mask(feature, boxes, 8, threshold)
        expected = ref_mask(feature.double().numpy(), boxes.tolist(), 8, threshold)
        assert got.dtype == feature.dtype and np.array_equal(got.bool().numpy(), expected)
    assert instance_mask(feature, boxes[1:], 8, 0.5).sum() == 1  # its one cell, (0, 6)
    assert instance_mask(feature, torch.zeros(0, 4), 8, 0.5).sum() == 0


def test_instance_mask_is_instance_related_not_the_box():
    instance = torch.tensor([1., 0.])
    feature = torch.zeros(2, 5, 5)
    feature[:, 1:3, 1:3] = instance[:, None, None]
    feature[:, 2, 2] = -instance                    # inside the box, unlike the instance
    feature[:, 4, 4] = instance                     # outside every box, like the instance
    mask = instance_mask(feature, torch.tensor([[16., 16., 48., 48.]]), 16, 0.5)
    expected = torch.zeros(5, 5)
    expected[1, 1] = expected[1, 2] = expected[2, 1] = expected[4, 4] = 1
    assert torch.equal(mask, expected)
    energy = normalised_energy(feature, 0.5 * instance)  # the box mean: 3 x v and 1 x -v
    assert energy.max() == 1 and energy.min() == 0 and energy[0, 0] == 0.5
    assert (normalised_energy(torch.ones(2, 3, 3), instance) == 0).all()


# ---------------------------------------------------------------------- feature distances
def test_masked_feature_distances_match_explicit_loops():
    gen = torch.Generator().manual_seed(1)
    student = torch.randn(2, 3, 4, 5, generator=gen)
    teacher = torch.randn(2, 3, 4, 5, generator=gen)
    mask = (torch.rand(2, 4, 5, generator=gen) > 0.6).float()
    fg, bg = masked_feature_distances(student, teacher, mask)
    ref_fg, ref_bg = ref_distances(student.double().numpy(), teacher.double().numpy(),
                                   mask.bool().numpy())
    assert fg.item() == pytest.approx(ref_fg, rel=1e-5)
    assert bg.item() == pytest.approx(ref_bg, rel=1e-5)
    one = torch.zeros(1, 1, 1, 2)
    fg, bg = masked_feature_distances(one + torch.tensor([3., 4.]), one, torch.tensor([[[1., 0.]]]))
    assert fg.item() == pytest.approx(3) and bg.item() == pytest.approx(4)


# ---------------------------------------------------------------------- instance relations
def test_roi_levels_follow_the_fpn_rule():
    sides = torch.tensor([50., 111., 112., 300., 1000., 5000.])
    boxes = torch.stack([torch.zeros(6), torch.zeros(6), sides, sides], 1)
    assert roi_levels(boxes, 5).tolist() == [0, 0, 1, 2, 4, 4]
    assert roi_levels(boxes, 3).tolist() == [0, 0, 1, 2, 2, 2]


def test_instance_features_roi_align_the_assigned_level_of_each_image():
    fine, coarse = torch.full((2, 2, 16, 16), 100.), torch.zeros(2, 2, 8, 8)
    fine[0, :, 1:8, 1:8] = torch.tensor([1., 2.])[:, None, None]    # around the small box
    fine[1, :, 8:15, 8:15] = torch.tensor([3., 4.])[:, None, None]
    coarse[0] = torch.tensor([5., 6.])[:, None, None]
    boxes = [torch.tensor([[16., 16., 48., 48.], [4., 4., 124., 124.]]),  # scale 32, 120
             torch.tensor([[72., 72., 112., 112.]])]
    got = instance_features([fine, coarse], [8, 16], boxes, 7)
    assert [tuple(g.shape) for g in got] == [(2, 98), (1, 98)]
    expected = [[1., 2.], [5., 6.], [3., 4.]]
    for row, values in zip(torch.cat(got), expected):
        assert torch.allclose(row, torch.tensor(values).repeat_interleave(49))
    empty = instance_features([fine, coarse], [8, 16], [torch.zeros(0, 4)] * 2, 7)
    assert [tuple(e.shape) for e in empty] == [(0, 98), (0, 98)]


def test_instance_features_sample_bin_centres_of_the_half_pixel_aligned_box():
    """A ramp (channel 0: column, channel 1: row) is bilinear-exact: the 7 x 7 bins of box
    [16, 48]^2 at stride 8 span cells [1.5, 5.5] (half-pixel shift), one sample at each centre."""
    ramp = torch.stack(torch.meshgrid(torch.arange(16.), torch.arange(16.), indexing='xy'))
    got, = instance_features([ramp[None]], [8], [torch.tensor([[16., 16., 48., 48.]])], 7)
    centres = 1.5 + (torch.arange(7.) + 0.5) * 4 / 7
    expected = torch.stack([centres.expand(7, 7), centres[:, None].expand(7, 7)])
    assert torch.allclose(got[0], expected.flatten(), atol=1e-5)


def test_relation_matrix_and_loss_closed_form():
    points = torch.tensor([[0., 0.], [3., 0.], [0., 4.]])
    pair = np.array([[0, 3, 4], [3, 0, 5], [4, 5, 0]], dtype=float)
    assert np.allclose(relation_matrix(points).numpy(), pair / (pair.sum() / 9))
    assert relation_loss([2 * points], [points]).item() == pytest.approx(0, abs=1e-7)
    other = torch.tensor([[0., 0.], [1., 0.], [0., 6.]])
    d_s = np.array([[np.hypot(*(a - b)) for b in other.numpy()] for a in other.numpy()])
    r_s, r_t = d_s / d_s.mean(), pair / pair.mean()
    diff = np.abs(r_s - r_t)
    smooth = np.where(diff < 1, 0.5 * diff ** 2, diff - 0.5).mean()
    single = torch.ones(1, 2)
    got = relation_loss([other, single], [points, 5 * single])
    assert got.item() == pytest.approx(smooth, rel=1e-5)  # the 1-instance image is left out
    assert relation_loss([single], [single]).item() == 0


# ------------------------------------------------------------------------------ the module
def test_zero_for_identical_features_through_identity_adapters():
    feats = pyramid(8, 0)
    loss = InsDistLoss(student_channels=8, teacher_channels=8)
    for conv in loss.adapters:
        identity_(conv)
    out = loss(outputs(feats), outputs(feats), realistic_batch())
    assert set(out) == {'loss_insdist_fg', 'loss_insdist_bg', 'loss_insdist_rel'}
    assert all(v.dim() == 0 and v.item() == pytest.approx(0, abs=1e-6) for v in out.values())


def test_feature_terms_match_an_independent_mask_resize_and_sum():
    """Weights 1, mask from level 1, nearest resize to each level, one box per image."""
    student, teacher = pyramid(3, 0, sizes=(8, 4, 2)), pyramid(3, 1, sizes=(8, 4, 2))
    boxes = [torch.tensor([[8., 8., 40., 24.]]), torch.tensor([[16., 32., 60., 60.]])]
    loss = InsDistLoss(student_channels=3, teacher_channels=3, num_levels=3, mask_level=1,
                       weight_fg=1, weight_bg=1)
    for conv in loss.adapters:
        identity_(conv)
    out = loss(outputs(student), outputs(teacher), make_batch(boxes, size=(64, 64)))
    masks = np.stack([ref_mask(teacher[1][i].double().numpy(), b.tolist(), 16, 0.5)
                      for i, b in enumerate(boxes)])
    fg = bg = 0.0
    for s, t in zip(student, teacher):
        size = t.shape[-1]
        rows = [int(np.floor(i * masks.shape[1] / size)) for i in range(size)]
        level_mask = masks[:, rows][:, :, rows]
        level_fg, level_bg = ref_distances(s.double().numpy(), t.double().numpy(), level_mask)
        fg, bg = fg + level_fg, bg + level_bg
    assert 0 < masks.mean() < 1
    assert out['loss_insdist_fg'].item() == pytest.approx(fg, rel=1e-5)
    assert out['loss_insdist_bg'].item() == pytest.approx(bg, rel=1e-5)
    assert out['loss_insdist_rel'].item() == 0  # one instance per image: no relation


def test_gradients_reach_student_and_adapters_never_the_teacher():
    loss = MODELS.build(dict(type='InsDistLoss', student_channels=16, teacher_channels=8))
    student, teacher = pyramid(16, 0, grad=True), pyramid(8, 1, grad=True)
    out = loss(outputs(student), outputs(teacher), three_instance_batch())
    assert all(torch.isfinite(v) and v.item() > 0 for v in out.values())
    sum(out.values()).backward()
    assert all(t.grad is None for t in teacher)
    assert all(s.grad is not None and s.grad.abs().sum() > 0 for s in student)
    assert all(conv.weight.grad.abs().sum() > 0 for conv in loss.adapters)
    student = pyramid(16, 0, grad=True)
    loss(outputs(student), outputs(teacher), three_instance_batch())['loss_insdist_rel'].backward()
    assert [s.grad is not None and s.grad.abs().sum() > 0 for s in student] == \
        [True, True, False, False, False]  # the boxes' levels
    two = loss(outputs(student), outputs(teacher), realistic_batch())['loss_insdist_rel']
    assert two.item() == 0  # two instances: one distance, always 2 x its mean


def test_trained_adapters_cannot_fit_fixed_unrelated_student_features():
    """Adam on the adapters alone; smooth fixed features at odd sizes. The 1x1 adapters can at
    most reach the least-squares residual of each region, well above zero."""
    sizes = [(49, 63), (25, 32)]
    student = [smooth_features(1, 2, size, seed=20 + i) for i, size in enumerate(sizes)]
    teacher = [smooth_features(1, 2, size, seed=10 + i) for i, size in enumerate(sizes)]
    batch = make_batch([torch.tensor([[100., 90., 220., 200.]])], size=(392, 504))
    loss = InsDistLoss(student_channels=2, teacher_channels=2, num_levels=2, mask_level=1,
                       weight_fg=1, weight_bg=1)

    def total() -> torch.Tensor:
        out = loss(outputs(student), outputs(teacher), batch)
        return out['loss_insdist_fg'] + out['loss_insdist_bg']

    for conv in loss.adapters:
        identity_(conv)
    start = total().item()
    mask = instance_mask(teacher[1][0], batch.data_samples[0].gt_instances.bboxes.tensor, 16, 0.5)
    bound = 0.0
    for s, t in zip(student, teacher):
        m = F.interpolate(mask[None, None], size=t.shape[-2:], mode='nearest')[0, 0].bool()
        for region in (m, ~m):
            x = np.concatenate([s[0][:, region].T.double().numpy(),
                                np.ones((int(region.sum()), 1))], 1)
            y = t[0][:, region].T.double().numpy()
            bound += np.sqrt(((y - x @ np.linalg.lstsq(x, y, rcond=None)[0]) ** 2).sum())
    optimizer = torch.optim.Adam(loss.adapters.parameters(), lr=0.05)
    for _ in range(300):
        value = total()
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    final = total().item()
    assert final >= bound * (1 - 1e-4)
    assert final >= 0.5 * start and final < start  # it trained, and stayed far from zero


def test_registered_for_both_scopes_and_checks_its_levels():
    assert MODELS.get('InsDistLoss') is InsDistLoss
    assert ROTATED_MODELS.get('InsDistLoss') is InsDistLoss
    with pytest.raises(ValueError, match='mask_level 5'):
        InsDistLoss(mask_level=5)
    with pytest.raises(ValueError, match='5 levels'):
        InsDistLoss(student_channels=8, teacher_channels=8)(
            outputs(pyramid(8, 0)[:4]), outputs(pyramid(8, 1)[:4]), realistic_batch())


# ------------------------------------------------------------------------------ the configs
def test_config_builds_and_trains_one_iteration(teacher_checkpoints, monkeypatch):  # noqa: F811
    """(tests/test_configs.py builds the SAR-AIRcraft config as well.)"""
    monkeypatch.chdir(REPO)
    dataset = 'shiprs'
    path = f'configs/baselines/insdist_retinanet_r50-mnv2_fpn_100e_{dataset}.py'
    cfg = Config.fromfile(path)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    loss_cfg, = cfg.model.distill_losses
    assert loss_cfg == dict(type='InsDistLoss', student_channels=256, teacher_channels=256,
                            mask_level=2, threshold=0.5, weight_fg=5e-5, weight_bg=2.5e-5,
                            weight_rel=1.0)
    assert cfg.model.teacher.config == f'configs/detectors/retinanet_r50_fpn_100e_{dataset}.py'
    cfg.model.teacher.checkpoint = teacher_checkpoints(cfg.model.teacher.config)
    cfg.model.student.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    num_classes = model.student.bbox_head.num_classes
    inputs, samples = detection_batch(num_images=2, size=128, num_classes=num_classes)
    for sample in samples:  # a third instance: two alone have a constant relation
        sample.gt_instances = sample.gt_instances.cat([sample.gt_instances, InstanceData(
            bboxes=torch.tensor([[70., 70., 120., 110.]]), labels=torch.tensor([1]))])
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3))
    before = model.distill_losses[0].adapters[0].weight.detach().clone()
    log = model.train_step(dict(inputs=inputs, data_samples=samples), optim)
    names = ('loss_insdist_fg', 'loss_insdist_bg', 'loss_insdist_rel')
    assert all(torch.isfinite(log[name]) and log[name] > 1e-4 for name in names)
    assert sum(log[name] for name in names) < log['loss_cls'] + log['loss_bbox']
    assert not torch.equal(before, model.distill_losses[0].adapters[0].weight)
