"""IFKD: EDE (eq. 1-2), FDR (eq. 3-8), HSM (eq. 9-11), the losses (eq. 12-13) and their tools."""
import importlib.util
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet.structures import DetDataSample
from mmengine.structures import PixelData

import ifkd_mm  # noqa: F401  (registries)
from ifkd_mm.distillation.base import DistillBatch
from ifkd_mm.distillation.ifkd import (ExternalDisturbanceEnhancement,
                                       FrequencyDomainReconstruction, IFKDFeatureLoss,
                                       IFKDHeadLoss)
from ifkd_mm.distillation.ifkd import fdr as fdr_lib
from ifkd_mm.distillation.ifkd import hsm as hsm_lib
from ifkd_mm.distillation.ifkd.losses import HSM_CACHE_KEY
from ifkd_mm.registry import MODELS, ROTATED_MODELS

from .conftest import REPO

MEAN = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """Run this module's small tensors on one thread: measured 2.5x faster than two here."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def load_tool(name: str):
    """A tool script under tools/ifkd as a module."""
    path = osp.join(REPO, 'tools', 'ifkd', f'{name}.py')
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_batch(images, canvas, priors=None) -> DistillBatch:
    """A batch of RGB [0, 255] images (3, h, w), padded to ``canvas``, optional uint8 priors."""
    pixels = torch.zeros(len(images), 3, *canvas)
    samples = []
    for i, image in enumerate(images):
        h, w = image.shape[-2:]
        pixels[i, :, :h, :w] = image
        sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                             pad_shape=tuple(canvas), img_path=f'{i}.png'))
        if priors is not None:
            sample.gt_sem_seg = PixelData(sem_seg=priors[i])
        samples.append(sample)
    return DistillBatch(inputs=(pixels - MEAN) / STD, data_samples=samples, mean=MEAN, std=STD)


def pyramid(batch: int, channels: int, sizes, requires_grad: bool = False, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    levels = [torch.randn(batch, channels, *size, generator=gen) for size in sizes]
    return [level.requires_grad_(requires_grad) for level in levels]


# ---------------------------------------------------------------- HSM (eq. 9-11)
@pytest.mark.parametrize('c', [0.5, 1.0, 2.0])
def test_hsm_geoopt_distance_matches_the_papers_formula(c):
    gen = torch.Generator().manual_seed(1)
    x, y = (torch.randn(2, 64, 7, generator=gen, dtype=torch.float64) for _ in range(2))
    radius = torch.rand(2, 64, 1, generator=gen, dtype=torch.float64) * 0.9 / c ** 0.5
    x, y = x / x.norm(dim=-1, keepdim=True) * radius, y / y.norm(dim=-1, keepdim=True) * radius
    geo = hsm_lib.hyperbolic_distance(x, y, c, dim=-1)
    ref = hsm_lib.poincare_distance(x, y, c, dim=-1)
    torch.testing.assert_close(geo, ref, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(hsm_lib.hyperbolic_distance(y, x, c, dim=-1), geo)
    zero = hsm_lib.hyperbolic_distance(x, x, c, dim=-1)
    torch.testing.assert_close(zero, torch.zeros_like(zero), atol=1e-6, rtol=0)
    assert (geo > 0).all()


def test_hsm_maps_large_fpn_features_inside_the_ball_by_clipping():
    x = torch.randn(2, 256, 3, 3) * 50  # FPN-like norms, far above 1/sqrt(c)
    for c, r in ((1.0, 1.0), (4.0, 0.5)):
        ball = hsm_lib.to_poincare_ball(x, c, r)
        norms = ball.norm(dim=1)
        torch.testing.assert_close(norms, torch.full_like(norms, np.tanh(c ** 0.5 * r) / c ** 0.5))


def test_hsm_mask_is_detached_mean_one_and_larger_where_features_differ():
    teacher = torch.randn(2, 16, 6, 8)
    student = teacher.clone()
    student[:, :, 1:3, 2:5] += 3 * torch.randn(2, 16, 2, 3)
    student.requires_grad_(True)
    module = MODELS.build(dict(type='HyperbolicSimilarityMask', c=1.0))
    mask = module([teacher], [student])[0]
    assert mask.shape == (2, 1, 6, 8) and not mask.requires_grad
    torch.testing.assert_close(mask.mean(dim=(1, 2, 3)), torch.ones(2))
    inside = mask[:, :, 1:3, 2:5]
    outside = mask.clone()
    outside[:, :, 1:3, 2:5] = float('nan')
    assert inside.min() > 10 * outside.nan_to_num(0).amax()
    equal = module([teacher], [teacher])[0]  # equal features: all ones, not 0/0
    torch.testing.assert_close(equal, torch.ones_like(equal))


# ---------------------------------------------------------------- FDR (eq. 3-8)
def test_fdr_window_is_the_square_of_eq4_around_the_shifted_zero_frequency():
    window = fdr_lib.low_pass_window(8, 10, 0.5)  # radius 0.5 * 8 / 2 = 2 around (4, 5)
    expected = torch.zeros(8, 10)
    expected[2:7, 3:8] = 1
    torch.testing.assert_close(window, expected)
    spec = fdr_lib.spectrum(torch.ones(1, 1, 8, 10))
    assert spec[0, 0, 4, 5].real == 80 and spec.abs().sum() == 80  # DC at (H//2, W//2)
    assert fdr_lib.low_pass_window(5, 5, 10.0).all()


def test_fdr_is_identity_with_full_window_unit_frs_and_unit_filter():
    f = torch.randn(2, 4, 7, 9)
    out = fdr_lib.frequency_reconstruct(f, fdr_lib.low_pass_window(7, 9, 10.0),
                                        torch.ones(2, 1, 7, 9), torch.ones(4, 7, 9))
    torch.testing.assert_close(out, f, atol=1e-5, rtol=1e-5)


def test_fdr_frs_mask_reweights_only_the_low_frequency_part():
    f, window = torch.randn(2, 4, 8, 8), fdr_lib.low_pass_window(8, 8, 0.4)
    low, high = fdr_lib.split_frequencies(f, window)
    torch.testing.assert_close(low + high, f, atol=1e-5, rtol=1e-5)
    frs = torch.rand(2, 1, 8, 8)
    out = fdr_lib.frequency_reconstruct(f, window, frs, torch.ones(4, 8, 8))
    torch.testing.assert_close(out, high + low * frs, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(out, f, atol=1e-2)


def test_frs_mask_is_the_max_over_anchors_and_classes_of_teacher_probabilities():
    anchors, classes = 3, 5
    scores = torch.randn(2, anchors * classes, 4, 6, requires_grad=True)
    expected = scores.sigmoid().view(2, anchors, classes, 4, 6).amax(dim=(1, 2))[:, None]
    mask = fdr_lib.frs_mask(scores)
    torch.testing.assert_close(mask, expected)
    assert not mask.requires_grad


def test_fdr_module_shares_ratio_and_filter_between_teacher_and_student():
    fdr = MODELS.build(dict(type='FrequencyDomainReconstruction', channels=4, num_levels=2,
                            ratio_range=(0.1, 0.9)))
    with torch.no_grad():
        fdr.filters.uniform_(0.2, 2.0)
    levels = pyramid(2, 4, [(8, 8), (4, 6)])
    frs = [torch.rand(2, 1, *f.shape[-2:]) for f in levels]
    for mode in (True, False):
        fdr.train(mode)
        out_t, out_s = fdr(levels, [f.clone() for f in levels], frs)
        for t, s in zip(out_t, out_s):
            assert torch.equal(t, s)
    ratios = [fdr.train().draw_ratio() for _ in range(50)]
    assert min(ratios) >= 0.1 and max(ratios) <= 0.9 and len(set(ratios)) == 50
    assert fdr.eval().draw_ratio() == fdr.ratio == 0.1
    for size in ((8, 8), (5, 13), (100, 64)):
        weight = fdr.level_filter(1, size)
        assert weight.shape == (4, *size)
        torch.testing.assert_close(weight.abs().mean(), torch.tensor(1.0))


def _train_filter_only(guarded: bool, monkeypatch) -> list:
    """Train only FDR's W on the feature distance of fixed teacher/student features."""
    if not guarded:
        monkeypatch.setattr(fdr_lib, 'normalized_filter', lambda w, size: F.interpolate(
            w[None], size=size, mode='bilinear', align_corners=False)[0])
    torch.manual_seed(0)
    fdr = FrequencyDomainReconstruction(channels=4, num_levels=2, filter_size=8).eval()
    teacher, student = pyramid(2, 4, [(16, 16), (8, 8)], seed=1), pyramid(2, 4, [(16, 16), (8, 8)])
    frs = [torch.rand(2, 1, *f.shape[-2:]) for f in teacher]
    optimizer = torch.optim.Adam(fdr.parameters(), lr=0.05)
    losses = []
    for _ in range(150):
        out_t, out_s = fdr(teacher, student, frs)
        loss = sum((t - s).pow(2).sum(1).mean() for t, s in zip(out_t, out_s))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if guarded:
            for level, f in enumerate(teacher):
                magnitude = fdr.level_filter(level, f.shape[-2:]).abs().mean()
                assert abs(magnitude.item() - 1) < 1e-5
    return losses


def test_fdr_filter_cannot_collapse_to_zero(monkeypatch):
    guarded = _train_filter_only(True, monkeypatch)
    assert guarded[-1] > 0.15 * guarded[0]  # its floor here is about 0.25
    unguarded = _train_filter_only(False, monkeypatch)  # the trap the guard prevents
    assert unguarded[-1] < 0.01 * unguarded[0]


# ---------------------------------------------------------------- EDE (eq. 1-2)
def test_ede_cached_adds_exactly_the_prior_resized_to_each_level():
    h, w, canvas = 12, 14, (16, 16)
    prior = torch.randint(0, 256, (1, h, w), dtype=torch.uint8)
    batch = make_batch([torch.rand(3, h, w) * 255], canvas, priors=[prior])
    ede = MODELS.build(dict(type='ExternalDisturbanceEnhancement', mode='cached'))
    levels = pyramid(1, 3, [canvas, (8, 8)])
    out = ede(levels, batch)
    expected = torch.zeros(1, 1, *canvas)
    expected[0, 0, :h, :w] = prior[0].float() / 255  # sigmoid(prior) stored as * 255; 0 on pads
    torch.testing.assert_close(out[0], levels[0] + expected)
    torch.testing.assert_close(
        out[1], levels[1] + F.interpolate(expected, (8, 8), mode='bilinear', align_corners=False))
    with pytest.raises(KeyError, match='LoadSAMPrior'):
        ede(levels, make_batch([torch.rand(3, h, w)], canvas))


def test_ede_builds_mobile_sam_lazily_and_names_a_missing_checkpoint(tmp_path):
    missing = str(tmp_path / 'mobile_sam.pt')
    loss = IFKDFeatureLoss(8, 8, ede=dict(checkpoint=missing), fdr=None, num_levels=1)
    assert loss.ede._sam == [] and not any('sam' in key for key in loss.state_dict())
    batch = make_batch([torch.rand(3, 8, 8) * 255], (8, 8))
    with pytest.raises(FileNotFoundError, match=r'ExternalDisturbanceEnhancement\.checkpoint.*'
                                                r'mobile_sam\.pt'):
        loss({'neck': pyramid(1, 8, [(8, 8)])}, {'neck': pyramid(1, 8, [(8, 8)])}, batch)


@pytest.fixture(scope='module')
def sam_checkpoint(tmp_path_factory) -> str:
    """A randomly initialised MobileSAM vit_t state dict (mask logits scaled up to vary)."""
    from mobile_sam import sam_model_registry

    torch.manual_seed(0)
    sam = sam_model_registry['vit_t']()
    with torch.no_grad():
        sam.mask_decoder.output_hypernetworks_mlps[0].layers[-1].weight.mul_(300)
    path = str(tmp_path_factory.mktemp('sam') / 'mobile_sam.pt')
    torch.save(sam.state_dict(), path)
    return path


def test_ede_online_mobile_sam_and_the_precomputed_prior_agree(sam_checkpoint, tmp_path):
    """One MobileSAM run online (through the loss, with backward) and one by the tool."""
    h, w, canvas = 40, 56, (64, 64)
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    rgb = torch.stack([(xx * 4) % 256, (yy * 6) % 256, ((xx + yy) > 50) * 200]).to(torch.uint8)
    img_path = str(tmp_path / 'scene_01.png')
    mmcv.imwrite(rgb.permute(1, 2, 0).numpy()[..., ::-1], img_path)  # stored as RGB on disk

    loss = MODELS.build(dict(type='IFKDFeatureLoss', student_channels=8, teacher_channels=16,
                             num_levels=2, ede=dict(checkpoint=sam_checkpoint)))
    assert loss.ede._sam == []
    batch = make_batch([rgb.float()], canvas)
    student = {'neck': pyramid(1, 8, [(16, 16), (8, 8)], requires_grad=True)}
    teacher = {'neck': pyramid(1, 16, [(16, 16), (8, 8)], seed=1),
               'cls_scores': pyramid(1, 9, [(16, 16), (8, 8)], seed=2)}
    loss(student, teacher, batch)['loss_ifkd_feat'].backward()
    sam = loss.ede._sam[0]
    assert not sam.training and all(p.grad is None and not p.requires_grad
                                    for p in sam.parameters())
    assert not any('sam' in key for key in loss.state_dict())
    assert all(p is not q for p in loss.parameters() for q in sam.parameters())
    prior = batch.cache['ifkd_sam_prior_online_mask']
    assert prior.shape == (1, 1, *canvas) and prior.min() >= 0 and prior.max() <= 1
    assert prior[..., h:, :].abs().sum() == 0 and prior[..., w:].abs().sum() == 0

    tool = load_tool('precompute_sam_prior')
    out_dir = str(tmp_path / 'priors')
    assert tool.precompute_priors(sam, [img_path], out_dir) == (1, 0)
    assert tool.precompute_priors(None, [img_path], out_dir) == (0, 1)  # resumable: skipped
    png = mmcv.imread(osp.join(out_dir, 'scene_01.png'), flag='unchanged')
    assert png.shape == (h, w) and png.dtype == np.uint8 and png.std() > 5
    cached = torch.from_numpy(png).float() / 255
    assert (cached - prior[0, 0, :h, :w]).abs().max() <= 1.01 / 255


def test_precompute_tool_lists_the_split_and_requires_the_checkpoint(synthetic_root, tmp_path):
    from mmengine.config import Config

    tool = load_tool('precompute_sam_prior')
    cfg = Config.fromfile(osp.join(REPO, 'configs/demo/retinanet_r18_fpn_demo_synthetic-shiprs.py'))
    root = osp.join(synthetic_root, 'ShipRSImageNet') + '/'
    cfg.train_dataloader.dataset.data_root = root
    cfg.val_dataloader.dataset.data_root = root
    train, val = tool.dataset_image_paths(cfg, 'train'), tool.dataset_image_paths(cfg, 'val')
    assert train and val and not set(train) & set(val)
    assert all(osp.isfile(path) for path in train + val)
    with pytest.raises(FileNotFoundError, match='--checkpoint'):
        tool.main([osp.join(REPO, 'configs/demo/retinanet_r18_fpn_demo_synthetic-shiprs.py'),
                   '--checkpoint', str(tmp_path / 'none.pt'), '--out-dir', str(tmp_path)])


@pytest.mark.parametrize('direction', ['horizontal', 'vertical', 'diagonal'])
def test_cached_prior_stays_aligned_with_the_image_through_resize_flip_and_padding(
        tmp_path, direction):
    from mmcv.transforms import Compose
    from mmdet.models.data_preprocessors import DetDataPreprocessor
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope

    init_default_scope('mmdet')
    rng = np.random.default_rng(0)
    gray = np.kron(rng.integers(0, 256, (6, 8)), np.ones((7, 7))).astype(np.uint8)  # 42 x 56
    mmcv.imwrite(np.repeat(gray[..., None], 3, axis=2), str(tmp_path / 'img.png'))
    mmcv.imwrite(gray, str(tmp_path / 'priors' / 'img.png'))  # the prior: the image itself
    pipeline = Compose([
        dict(type='LoadImageFromFile'),
        dict(type='LoadSAMPrior', prior_dir=str(tmp_path / 'priors')),
        dict(type='Resize', scale=(112, 84), keep_ratio=True),  # x 2
        dict(type='RandomFlip', prob=1.0, direction=direction),
        dict(type='PackDetInputs', meta_keys=('img_path', 'img_shape', 'ori_shape',
                                              'scale_factor', 'flip', 'flip_direction'))
    ])
    data = pipeline(dict(img_path=str(tmp_path / 'img.png'), img_id=0))
    preprocessor = DetDataPreprocessor(mean=MEAN.flatten().tolist(), std=STD.flatten().tolist(),
                                       bgr_to_rgb=True, pad_size_divisor=32)
    data = preprocessor(pseudo_collate([data]), False)
    batch = DistillBatch(inputs=data['inputs'], data_samples=data['data_samples'], mean=MEAN,
                         std=STD)
    assert batch.inputs.shape[-2:] == (96, 128) and batch.img_metas[0]['img_shape'] == (84, 112)
    prior = ExternalDisturbanceEnhancement(mode='cached').prior(batch)[0, 0]
    image = batch.pixel_images()[0, 0] / 255
    assert prior[84:].abs().sum() == 0 and prior[:, 112:].abs().sum() == 0  # padding
    prior, image = prior[:84, :112], image[:84, :112]
    agree = ((prior - image).abs() < 1.5 / 255).float().mean()
    flipped = {'horizontal': [-1], 'vertical': [-2], 'diagonal': [-2, -1]}[direction]
    unaligned = ((prior.flip(flipped) - image).abs() < 1.5 / 255).float().mean()
    assert agree > 0.7 and unaligned < 0.1


# ---------------------------------------------------------------- losses (eq. 12-13)
def test_feature_loss_with_every_part_off_is_the_masked_l2_of_eq12():
    loss = IFKDFeatureLoss(8, 16, alpha=0.06, ede=None, fdr=None, hsm=None, num_levels=2)
    assert loss.requires == ('neck', )
    student, teacher = pyramid(2, 8, [(8, 8), (4, 6)]), pyramid(2, 16, [(8, 8), (4, 6)], seed=1)
    out = loss({'neck': student}, {'neck': teacher}, make_batch([torch.rand(3, 8, 8)] * 2, (8, 8)))
    expected = 0
    for level, (s, t) in enumerate(zip(student, teacher)):
        diff = (t - loss.adapters[level](s)).pow(2).sum(dim=1)  # sum_c, (B, H, W)
        expected += diff.sum(dim=(1, 2)).mean() / (t.shape[2] * t.shape[3])
    torch.testing.assert_close(out['loss_ifkd_feat'], 0.06 * expected)


def test_head_loss_without_hsm_is_the_soft_bce_of_eq13():
    loss = IFKDHeadLoss(beta=0.5, hsm=None)
    student, teacher = pyramid(2, 12, [(8, 8), (4, 4)]), pyramid(2, 12, [(8, 8), (4, 4)], seed=1)
    out = loss({'cls_scores': student}, {'cls_scores': teacher}, None)
    expected = 0
    for s, t in zip(student, teacher):
        bce = F.binary_cross_entropy(s.sigmoid(), t.sigmoid(), reduction='none').sum(dim=1)
        expected += bce.sum(dim=(1, 2)).mean() / (t.shape[2] * t.shape[3])
    torch.testing.assert_close(out['loss_ifkd_head'], 0.5 * expected)


def test_full_ifkd_gradients_reach_student_adapters_and_filter_never_the_teacher():
    sizes, canvas = [(16, 16), (8, 8), (4, 4)], (16, 16)
    priors = [torch.randint(0, 256, (1, 16, 16), dtype=torch.uint8) for _ in range(2)]
    batch = make_batch([torch.rand(3, 16, 16) * 255] * 2, canvas, priors=priors)
    feat = MODELS.build(dict(type='IFKDFeatureLoss', student_channels=8, teacher_channels=16,
                             num_levels=3, ede=dict(mode='cached'), fdr=dict(), hsm=dict()))
    head = MODELS.build(dict(type='IFKDHeadLoss', student_channels=8, teacher_channels=16))
    student = {'neck': pyramid(2, 8, sizes, requires_grad=True),
               'cls_scores': pyramid(2, 6, sizes, requires_grad=True, seed=2)}
    teacher = {'neck': pyramid(2, 16, sizes, seed=1), 'cls_scores': pyramid(2, 6, sizes, seed=3)}
    feat.train()
    losses = {**feat(student, teacher, batch), **head(student, teacher, batch)}
    assert set(losses) == {'loss_ifkd_feat', 'loss_ifkd_head'}
    assert all(v.ndim == 0 and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    for level in student['neck'] + student['cls_scores']:
        assert level.grad is not None and level.grad.abs().sum() > 0
    for adapter in feat.adapters:
        assert adapter.weight.grad.abs().sum() > 0
    assert feat.fdr.filters.grad.abs().sum() > 0
    assert not any(t.requires_grad or t.grad is not None
                   for t in teacher['neck'] + teacher['cls_scores'])
    masks = batch.cache[HSM_CACHE_KEY]  # the head loss used the feature loss's adapted mask
    assert len(masks) == 3 and not any(m.requires_grad for m in masks)
    expected = sum((F.binary_cross_entropy(s.sigmoid(), t.sigmoid(), reduction='none')
                    .sum(1, keepdim=True) * m).mean() for s, t, m in
                   zip(student['cls_scores'], teacher['cls_scores'], masks))
    torch.testing.assert_close(losses['loss_ifkd_head'], 0.5 * expected.detach())


def test_level_and_channel_mismatches_are_clear_errors():
    with pytest.raises(ValueError, match='FDR filters'):
        IFKDFeatureLoss(8, 8, fdr=dict(num_levels=4), num_levels=5)
    loss = IFKDFeatureLoss(8, 8, fdr=None, hsm=None, num_levels=3)
    with pytest.raises(ValueError, match='expects 3 levels but student_neck has 2'):
        loss({'neck': pyramid(1, 8, [(4, 4)] * 2)}, {'neck': pyramid(1, 8, [(4, 4)] * 3)}, None)
    loss = IFKDFeatureLoss(8, 8, hsm=None, num_levels=2)
    with pytest.raises(ValueError, match='teacher_cls_scores has 3'):
        loss({'neck': pyramid(1, 8, [(4, 4)] * 2)},
             {'neck': pyramid(1, 8, [(4, 4)] * 2), 'cls_scores': pyramid(1, 3, [(4, 4)] * 3)},
             None)
    head = IFKDHeadLoss()
    with pytest.raises(ValueError, match='equal neck channels'):
        head({'neck': pyramid(1, 8, [(4, 4)]), 'cls_scores': pyramid(1, 3, [(4, 4)])},
             {'neck': pyramid(1, 16, [(4, 4)]), 'cls_scores': pyramid(1, 3, [(4, 4)])},
             make_batch([torch.rand(3, 4, 4)], (4, 4)))


def test_modules_are_registered_for_mmdet_and_mmrotate_configs():
    from mmdet.registry import TRANSFORMS
    from mmrotate.registry import TRANSFORMS as ROTATED_TRANSFORMS

    for name in ('ExternalDisturbanceEnhancement', 'FrequencyDomainReconstruction',
                 'HyperbolicSimilarityMask', 'IFKDFeatureLoss', 'IFKDHeadLoss'):
        assert MODELS.get(name) is not None and ROTATED_MODELS.get(name) is not None
    assert TRANSFORMS.get('LoadSAMPrior') is ROTATED_TRANSFORMS.get('LoadSAMPrior') is not None


# ---------------------------------------------------------------- visualisation tool
def test_render_masks_writes_the_ede_fdr_and_hsm_figures(tmp_path):
    from PIL import Image

    tool = load_tool('vis_masks')
    sizes = [(16, 16), (8, 8)]
    loss = IFKDFeatureLoss(8, 16, num_levels=2, ede=dict(mode='cached'))
    batch = make_batch([torch.rand(3, 12, 16) * 255], (16, 16),
                       priors=[torch.randint(0, 256, (1, 12, 16), dtype=torch.uint8)])
    paths = tool.render_masks(loss, pyramid(1, 16, sizes), pyramid(1, 8, sizes),
                              pyramid(1, 9, sizes), batch, str(tmp_path / 'vis'))
    names = sorted(osp.basename(p) for p in paths)
    assert names == ['ede_prior.png', 'fdr_level0.png', 'fdr_level1.png', 'hsm_level0.png',
                     'hsm_level1.png']
    for path in paths:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.format == 'PNG' and min(image.size) > 100


def test_vis_masks_cli_on_a_distiller_config(synthetic_root, tmp_path):
    """The CLI end to end: a RetinaNet distiller with cached EDE, one synthetic image."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    demo = osp.join(REPO, 'configs/demo/retinanet_r18_fpn_demo_synthetic-shiprs.py')
    init_default_scope('mmdet')
    teacher = MODELS.build(Config.fromfile(demo).model)
    torch.save({'state_dict': teacher.state_dict()}, str(tmp_path / 'teacher.pth'))
    image = osp.join(synthetic_root, 'ShipRSImageNet/VOC_Format/JPEGImages/000001.bmp')
    gray = mmcv.imread(image, flag='grayscale')
    mmcv.imwrite(gray, str(tmp_path / 'priors' / '000001.png'))
    config = tmp_path / 'ifkd_distill.py'
    config.write_text(f"""
_base_ = {demo!r}
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSAMPrior', prior_dir={str(tmp_path / 'priors')!r}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(256, 256), keep_ratio=True),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
model = dict(
    _delete_=True, type='DetectionDistiller', student={{{{_base_.model}}}},
    teacher=dict(config={demo!r}, checkpoint={str(tmp_path / 'teacher.pth')!r}),
    distill_losses=[
        dict(type='IFKDFeatureLoss', student_channels=128, teacher_channels=128,
             ede=dict(mode='cached')),
        dict(type='IFKDHeadLoss')])
""")
    out_dir = tmp_path / 'vis'
    load_tool('vis_masks').main([str(config), image, '--out-dir', str(out_dir)])
    assert sorted(p.name for p in out_dir.iterdir()) == ['ede_prior.png'] + [
        f'{kind}_level{level}.png' for kind in ('fdr', 'hsm') for level in range(5)]
