"""FKD (Table 3 baseline): closed forms, gradients, trainable parts on fixed features, configs."""
import copy
import math
import os.path as osp
from typing import Dict, List, Optional

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper

import ifkd_mm  # noqa: F401  (registers the modules)
from ifkd_mm.distillation.baselines import (FKDLoss, NonLocalBlock, attention_maps,
                                            attention_masked_loss, attention_masks,
                                            attention_transfer_loss)
from ifkd_mm.registry import MODELS

from .conftest import REPO
from .test_baselines import identity_, make_batch
from .test_configs import teacher_checkpoints  # noqa: F401  (fixture)
from .test_distiller import batch as detection_batch
from .test_ifkd import smooth_features

CONFIGS = [osp.join(REPO, f'configs/baselines/fkd_retinanet_r50-mnv2_fpn_100e_{dataset}.py')
           for dataset in ('shiprs', 'sar-aircraft')]
NAMES = {'loss_fkd_am', 'loss_fkd_at', 'loss_fkd_nld'}


def small_loss(channels: int = 4, num_levels: int = 2, **kwargs) -> FKDLoss:
    return FKDLoss(student_channels=channels, teacher_channels=channels, num_levels=num_levels,
                   relation_reductions=(2, ) * num_levels, relation_strides=(2, ) * num_levels,
                   **kwargs)


def levels(channels: int, seed: int, sizes=((9, 11), (5, 6)), grad: bool = False) -> List:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(2, channels, *size, generator=gen).requires_grad_(grad)
            for size in sizes]


def neck(features) -> Dict:
    return dict(neck=tuple(features))


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def reference_masks(student: np.ndarray, teacher: np.ndarray, temp: float):
    """The masks image by image in numpy: mean over the two detectors of H*W*softmax(G^s/T)
    and C*softmax(G^c/T), with G the channel / spatial mean of |F|."""
    b, c, h, w = teacher.shape
    spatial, channel = np.zeros((b, h, w)), np.zeros((b, c))
    for features in (student, teacher):
        for n in range(b):
            magnitude = np.abs(features[n])
            spatial[n] += h * w * softmax(magnitude.mean(0).ravel() / temp).reshape(h, w) / 2
            channel[n] += c * softmax(magnitude.mean((1, 2)) / temp) / 2
    return spatial, channel


def reference_masked_loss(student, teacher, spatial, channel) -> float:
    total = 0.0
    b, c, h, w = teacher.shape
    for n in range(b):
        for k in range(c):
            for i in range(h):
                for j in range(w):
                    total += (teacher[n, k, i, j] - student[n, k, i, j]) ** 2 * \
                        spatial[n, i, j] * channel[n, k]
    return math.sqrt(total)


def reference_transfer_loss(student, teacher) -> float:
    s, t = np.abs(student), np.abs(teacher)
    spatial = np.sqrt(((s.mean(1) - t.mean(1)) ** 2).sum())
    channel = np.sqrt(((s.mean((2, 3)) - t.mean((2, 3))) ** 2).sum())
    return float(spatial + channel)


# ---------------------------------------------------------------- attention (eq. 1-4)
def test_attention_maps_and_masks_closed_form():
    features = torch.tensor([[[[1., -3.]], [[-1., 1.]]]])  # (1, 2, 1, 2)
    g_s, g_c = attention_maps(features)
    assert torch.allclose(g_s, torch.tensor([[[1., 2.]]]))  # (|1|+|-1|)/2, (|-3|+|1|)/2
    assert torch.allclose(g_c, torch.tensor([[2., 1.]]))  # (|1|+|-3|)/2, (|-1|+|1|)/2
    other = torch.ones(1, 2, 1, 2)  # uniform maps: its masks are all 1
    spatial, channel = attention_masks(other, features, 0.5)
    e = math.exp(2.0)  # softmax([1, 2] / 0.5) = [1, e] / (1 + e)
    assert torch.allclose(spatial, torch.tensor([[[(1 + 2 / (1 + e)) / 2,
                                                   (1 + 2 * e / (1 + e)) / 2]]]))
    assert torch.allclose(channel, torch.tensor([[(1 + 2 * e / (1 + e)) / 2,
                                                  (1 + 2 / (1 + e)) / 2]]))


def test_masks_match_numpy_and_sum_to_the_sizes():
    s, t = levels(3, 0)[0], levels(3, 1)[0]
    spatial, channel = attention_masks(s, t, 0.1)
    expected_s, expected_c = reference_masks(s.numpy().astype(np.float64),
                                             t.numpy().astype(np.float64), 0.1)
    assert np.allclose(spatial.numpy(), expected_s, rtol=1e-4, atol=1e-5)
    assert np.allclose(channel.numpy(), expected_c, rtol=1e-4, atol=1e-5)
    assert torch.allclose(spatial.sum((1, 2)), torch.full((2, ), 9. * 11))
    assert torch.allclose(channel.sum(1), torch.full((2, ), 3.))
    assert not spatial.requires_grad


def test_masked_and_transfer_losses_match_explicit_sums():
    s, t = levels(3, 2)[0], levels(3, 3)[0]
    spatial, channel = attention_masks(s, t, 0.5)
    as64 = [x.double().numpy() for x in (s, t, spatial, channel)]
    assert attention_masked_loss(s, t, spatial, channel).item() == \
        pytest.approx(reference_masked_loss(*as64), rel=1e-5)
    assert attention_transfer_loss(s, t).item() == \
        pytest.approx(reference_transfer_loss(as64[0], as64[1]), rel=1e-5)
    # by hand: one location, two channels, masks 1 and 3 on the two channels
    teacher = torch.tensor([[[[2.]], [[0.]]]])
    student = torch.tensor([[[[1.]], [[-2.]]]])
    loss = attention_masked_loss(student, teacher, torch.ones(1, 1, 1), torch.tensor([[1., 3.]]))
    assert loss.item() == pytest.approx(math.sqrt(1 * 1 + 4 * 3))
    # |student| - |teacher|: channel means (1 - 2, 2 - 0), location mean (1.5 - 1)
    assert attention_transfer_loss(student, teacher).item() == \
        pytest.approx(0.5 + math.sqrt(1 + 4))


# ------------------------------------------------------------------ non-local (eq. 5)
def reference_relation(block: NonLocalBlock, x: np.ndarray) -> np.ndarray:
    """``y_i = 1/N sum_j theta_i . phi_j g_j`` with phi, g max-pooled 2 x 2 (last window partial)
    by explicit loops over one image of shape (C, H, W)."""
    def conv(layer, features):
        weight = layer.weight.detach().double().numpy()[:, :, 0, 0]
        return np.einsum('oc,chw->ohw', weight, features) + \
            layer.bias.detach().double().numpy()[:, None, None]

    def pool(features):
        c, h, w = features.shape
        pooled = np.zeros((c, math.ceil(h / 2), math.ceil(w / 2)))
        for a in range(pooled.shape[1]):
            for b in range(pooled.shape[2]):
                pooled[:, a, b] = features[:, 2 * a:2 * a + 2, 2 * b:2 * b + 2].max((1, 2))
        return pooled

    theta, phi, g = conv(block.theta, x), pool(conv(block.phi, x)), pool(conv(block.g, x))
    keys = [(a, b) for a in range(phi.shape[1]) for b in range(phi.shape[2])]
    y = np.zeros((theta.shape[0], ) + x.shape[1:])
    for i in range(x.shape[1]):
        for j in range(x.shape[2]):
            for a, b in keys:
                y[:, i, j] += theta[:, i, j] @ phi[:, a, b] * g[:, a, b] / len(keys)
    return y


def test_non_local_block_closed_form_and_identity_start():
    torch.manual_seed(0)
    block = NonLocalBlock(3, 2, stride=2)
    x = torch.randn(2, 3, 5, 7)  # odd: the pooled grid is 3 x 4, its last windows partial
    assert torch.equal(block(x), x)  # BN scale and shift start at 0
    relation = block.relation(x)
    for n in range(2):
        expected = reference_relation(block, x[n].double().numpy())
        assert np.allclose(relation[n].detach().numpy(), expected, rtol=1e-4, atol=1e-5)
    block.eval()
    block.out[1].reset_running_stats()  # eval: mean 0, variance 1
    with torch.no_grad():
        block.out[1].weight.fill_(2.0)
        block.out[1].bias.fill_(0.5)
    eps = block.out[1].eps
    expected = x + (block.out[0](relation) * 2.0 / math.sqrt(1 + eps) + 0.5)
    assert torch.allclose(block(x), expected, atol=1e-5)
    assert block.relation(torch.randn(1, 3, 1, 1)).shape == (1, 2, 1, 1)  # smaller than stride


# -------------------------------------------------------------------------- the module
def test_fkd_loss_is_the_weighted_sum_of_its_terms():
    s, t = levels(4, 4), levels(4, 5)
    loss = small_loss(temp=0.5, am_weight=2.0, at_weight=3.0, nld_weight=5.0)
    for conv in (*loss.adapters, *loss.relation_adapters):
        identity_(conv)
    out = loss(neck(s), neck(t), make_batch([torch.zeros(0, 4)] * 2))
    assert set(out) == NAMES and all(v.dim() == 0 for v in out.values())
    am = at = nld = 0.0
    for s_level, t_level in zip(s, t):
        s64, t64 = s_level.double().numpy(), t_level.double().numpy()
        am += reference_masked_loss(s64, t64, *reference_masks(s64, t64, 0.5))
        at += reference_transfer_loss(s64, t64)
        nld += np.sqrt(((t64 - s64) ** 2).sum())  # relation blocks start as the identity
    assert out['loss_fkd_am'].item() == pytest.approx(2.0 * am, rel=1e-5)
    assert out['loss_fkd_at'].item() == pytest.approx(3.0 * at, rel=1e-5)
    assert out['loss_fkd_nld'].item() == pytest.approx(5.0 * nld, rel=1e-5)
    out = loss(neck(t), neck(t), make_batch([torch.zeros(0, 4)] * 2))
    assert all(v.item() == pytest.approx(0, abs=1e-4) for v in out.values())


def test_gradients_reach_the_student_and_the_loss_parts_never_the_teacher():
    s, t = levels(4, 6, grad=True), levels(4, 7, grad=True)
    loss = small_loss()
    out = loss(neck(s), neck(t), make_batch([torch.zeros(0, 4)] * 2))
    sum(out.values()).backward()
    assert all(level.grad is None for level in t)
    for level in s:
        assert torch.isfinite(level.grad).all() and level.grad.abs().sum() > 0
    for part in (*loss.adapters, *loss.relation_adapters):
        assert part.weight.grad.abs().sum() > 0
    for block in loss.student_relations:
        assert block.out[1].weight.grad.abs().sum() > 0  # the zero-started BN scale moves


def train_alone(loss: FKDLoss, student: List, teacher: List, steps: int,
                teacher_blocks: Optional[torch.nn.ModuleList] = None) -> List[Dict]:
    """Train every parameter of the loss (and of ``teacher_blocks``, non-local blocks on the
    teacher's side as in the authors' code) on fixed features; the first and last terms."""
    batch = make_batch([torch.zeros(0, 4)] * 2)
    params = list(loss.parameters()) + \
        (list(teacher_blocks.parameters()) if teacher_blocks is not None else [])
    optimizer = torch.optim.Adam(params, lr=0.05)

    def terms() -> Dict:
        out = loss(neck(student), neck(teacher), batch)
        if teacher_blocks is not None:
            out['loss_fkd_nld'] = loss.nld_weight * sum(
                torch.linalg.vector_norm(block(t) - adapter(relation(s)))
                for block, adapter, relation, s, t in zip(
                    teacher_blocks, loss.relation_adapters, loss.student_relations, student,
                    teacher))
        return out

    first = {k: v.item() for k, v in terms().items()}
    for _ in range(steps):
        optimizer.zero_grad()
        sum(terms().values()).backward()
        optimizer.step()
    return [first, {k: v.item() for k, v in terms().items()}]


def teacher_alone(loss: FKDLoss, student: List, teacher: List) -> Dict:
    """The terms with every adapter at zero: ``L_AM`` and ``L_NLD`` of the teacher alone."""
    reference = copy.deepcopy(loss)
    for conv in (*reference.adapters, *reference.relation_adapters):
        torch.nn.init.zeros_(conv.weight)
        torch.nn.init.zeros_(conv.bias)
    out = reference(neck(student), neck(teacher), make_batch([torch.zeros(0, 4)] * 2))
    return {k: v.item() for k, v in out.items()}


def test_trainable_parts_alone_cannot_collapse_the_loss_on_fixed_smooth_features():
    # Fixed, unrelated, spatially smooth levels of odd sizes; the adapters and the student's
    # relation blocks trained alone by everything the module returns (100 Adam steps at lr 0.05:
    # converged, 300 end the same). Against the teacher alone (adapters at zero), with flat masks
    # (T = 1) they kept 79-85 % of L_AM and 73-79 % of L_NLD over 3 seeds: chance fits. At the
    # authors' T = 0.1 the masks keep few locations and channels and the 1x1 adapter fits all
    # but 13-24 % of L_AM on one fixed batch (not across batches). L_AT has nothing to train.
    # A non-local block on the teacher's side trained by the same loss, as in the authors' code,
    # took L_NLD on to 38-43 %: it moves the teacher's relation toward the student's, so the
    # module has none.
    sizes = [(21, 25), (11, 13)]
    teacher = [smooth_features(2, 4, size, seed=10 + i) for i, size in enumerate(sizes)]
    student = [smooth_features(2, 4, size, seed=20 + i) for i, size in enumerate(sizes)]
    for temp, am_bound in ((1.0, 0.6), (0.1, 0.1)):
        torch.manual_seed(0)
        loss = small_loss(temp=temp)
        reference = teacher_alone(loss, student, teacher)
        first, last = train_alone(loss, student, teacher, steps=100)
        assert last['loss_fkd_am'] >= am_bound * reference['loss_fkd_am']
        assert last['loss_fkd_nld'] >= 0.6 * reference['loss_fkd_nld']
        assert last['loss_fkd_at'] == pytest.approx(first['loss_fkd_at'])
    torch.manual_seed(0)
    blocks = torch.nn.ModuleList(NonLocalBlock(4, 2, stride=2) for _ in sizes)
    with_teacher_block = train_alone(small_loss(temp=0.1), student, teacher, 100, blocks)[1]
    assert with_teacher_block['loss_fkd_nld'] < 0.6 * reference['loss_fkd_nld']


def test_rejects_unequal_channels_levels_and_relation_settings():
    with pytest.raises(ValueError, match='channel by channel'):
        FKDLoss(student_channels=128, teacher_channels=256)
    with pytest.raises(ValueError, match='each of the 4 levels'):
        FKDLoss(num_levels=4)
    with pytest.raises(ValueError, match='built for 2 levels'):
        small_loss()(neck(levels(4, 0) * 2), neck(levels(4, 1) * 2), make_batch([]))


def test_defaults_are_the_authors_retinanet_values():
    loss = FKDLoss()
    assert (loss.temp, loss.am_weight, loss.at_weight, loss.nld_weight) == \
        (0.1, 7e-5 * 6, 4e-3 * 6, 7e-5 * 6)
    inner = [block.theta.out_channels for block in loss.student_relations]
    strides = [block.pool.kernel_size for block in loss.student_relations]
    assert inner == [64, 64, 128, 128, 128] and strides == [8, 4, 2, 2, 2]


# ---------------------------------------------------------------------------- configs
@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_uses_the_defaults(path):
    cfg = Config.fromfile(path)
    assert cfg.model.type == 'DetectionDistiller'
    loss_cfg, = cfg.model.distill_losses
    loss = MODELS.build(dict(loss_cfg))
    default = FKDLoss()
    assert isinstance(loss, FKDLoss)
    assert (loss.temp, loss.am_weight, loss.at_weight, loss.nld_weight) == \
        (default.temp, default.am_weight, default.at_weight, default.nld_weight)
    assert osp.isfile(osp.join(REPO, cfg.model.teacher.config))


def test_shiprs_distiller_builds_and_trains_one_iteration(
        teacher_checkpoints, monkeypatch):  # noqa: F811  (the imported fixture)
    monkeypatch.chdir(REPO)
    cfg = Config.fromfile(CONFIGS[0])
    cfg.model.teacher.checkpoint = teacher_checkpoints(cfg.model.teacher.config)
    cfg.model.student.backbone.init_cfg = None  # no download; the heads get their own init
    distiller = MODELS.build(cfg.model)
    distiller.init_weights()
    fkd, = distiller.distill_losses
    assert all(block.out[1].weight.abs().sum() == 0 for block in fkd.student_relations)
    distiller.train()
    inputs, samples = detection_batch(num_images=2, size=64, num_classes=50)
    images = [((image - image.min()) / (image.max() - image.min()) * 255).to(torch.uint8)
              for image in inputs]
    optim_wrapper = OptimWrapper(torch.optim.SGD(distiller.parameters(), lr=1e-3))
    before = [p.detach().clone() for p in distiller.distill_losses.parameters()]
    log = distiller.train_step(dict(inputs=images, data_samples=samples), optim_wrapper)
    log = {name: value.detach().item() for name, value in log.items()}
    assert NAMES <= set(log) and {'loss_cls', 'loss_bbox'} <= set(log)
    assert all(math.isfinite(log[name]) and log[name] > 0 for name in NAMES)
    print({name: round(value, 4) for name, value in log.items()})
    after = list(distiller.distill_losses.parameters())
    assert any(not torch.equal(b, a) for b, a in zip(before, after))
    assert all(p.grad is None for p in distiller.teacher.parameters())
