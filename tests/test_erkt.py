"""ERKT-Net: DIST and CutMix losses (eq. 8-12, 15), the teacher ensemble (section 3.1, eq. 14), the
VSM units (Table 1), the distiller, the analyses, the configs and the end-to-end flow through
tools/train.py and tools/test.py on synthetic class folders."""
import glob
import importlib.util
import json
import os.path as osp
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope

import ifkd_mm  # noqa: F401
import ifkd_mm.classification  # noqa: F401  (until ifkd_mm imports it)
from ifkd_mm.classification import (FIRED_KEY, GFU, CutMixCrossEntropyLoss, DISTLoss,
                                    TeacherEnsemble, build_cls_model, eq14_weights,
                                    save_confusion_matrix)
from ifkd_mm.classification.analysis import conditional_probabilities, grad_cam, tsne
from ifkd_mm.registry import CLS_MODELS, CLS_TRANSFORMS

from .conftest import REPO, run

ERKT = osp.join(REPO, 'configs/erkt-net/erkt-net_ensemble-b0_600e_nwpu45-tr10.py')
BASELINE = osp.join(REPO, 'configs/erkt-net/baseline_efficientnet-b0_600e_nwpu45-tr10.py')
DEMO = osp.join(REPO, 'configs/erkt-net/demo')
IMAGENET_MEAN = [123.675, 116.28, 103.53]
TABLE1 = [('ColorJitter', 1.0, dict(brightness=0.5, contrast=0.5, saturation=0.5)),
          ('RandomRotation', 1.0, dict(degrees=180)), ('HorizontalFlip', 0.9, {}),
          ('VerticalFlip', 0.9, {}), ('Grayscale', 0.1, {}), ('AutoContrast', 0.1, {}),
          ('RandomErasing', 1.0, dict(value=IMAGENET_MEAN)),
          ('RandomResizedCrop', 0.1, dict(size=176))]


@pytest.fixture(autouse=True)
def mmpretrain_scope():
    init_default_scope('mmpretrain')


def tiny_classifier(num_classes: int = 4, width: int = 8) -> dict:
    return dict(type='ImageClassifier',
                backbone=dict(type='ResNet', depth=18, stem_channels=width, base_channels=width,
                              out_indices=(3, )),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=8 * width,
                          loss=dict(type='CutMixCrossEntropyLoss')))


NORM = dict(type='ClsDataPreprocessor', mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375], to_rgb=True)


@pytest.fixture(scope='module')
def members(tmp_path_factory):
    """Three randomly initialised tiny classifiers, each a config file and a checkpoint."""
    folder = tmp_path_factory.mktemp('members')
    init_default_scope('mmpretrain')
    out = []
    for k, (name, weight, width) in enumerate([('B0', 0.3, 4), ('B3', 0.4, 8), ('R50', 0.3, 6)]):
        torch.manual_seed(k)
        model_cfg = tiny_classifier(width=width)
        model = build_cls_model(model_cfg)
        model.init_weights()
        config = folder / f'{name}.py'
        config.write_text(f'model = {model_cfg!r}\ndata_preprocessor = {NORM!r}\n')
        checkpoint = folder / f'{name}.pth'
        torch.save(dict(state_dict=model.state_dict()), checkpoint)
        out.append(dict(name=name, weight=weight, config=str(config), checkpoint=str(checkpoint)))
    return out


# --- DIST (eq. 8-10) --------------------------------------------------------------------------


def hand_dist(z_s: np.ndarray, z_t: np.ndarray, tau: float):
    """Eq. 8-10 as printed (no ``tau ** 2``), in float64 with numpy's correlation coefficient."""
    def softmax(z):
        e = np.exp(z / tau - (z / tau).max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)
    p_s, p_t = softmax(z_s), softmax(z_t)
    inter = np.mean([1 - np.corrcoef(p_s[i], p_t[i])[0, 1] for i in range(len(p_s))])
    intra = np.mean([1 - np.corrcoef(p_s[:, j], p_t[:, j])[0, 1] for j in range(p_s.shape[1])])
    return inter, intra


def test_dist_follows_the_reference_code_with_its_tau_squared_factor():
    """By default both terms are ``tau ** 2 * w * (1 - mean Pearson)`` (the DIST authors' code,
    MMRazor); ``scale_by_tau_squared=False`` gives eq. 9-10 as printed."""
    rng = np.random.default_rng(0)
    z_s, z_t = rng.normal(0, 2, (5, 4)), rng.normal(0, 2, (5, 4))
    for tau in (1.0, 2.0, 4.0):
        inter, intra = hand_dist(z_s, z_t, tau)
        reference = DISTLoss(tau=tau, inter_weight=2.0, intra_weight=3.0)(
            torch.tensor(z_s), torch.tensor(z_t))
        assert reference['loss_inter'].item() == pytest.approx(tau ** 2 * 2.0 * inter, rel=1e-6)
        assert reference['loss_intra'].item() == pytest.approx(tau ** 2 * 3.0 * intra, rel=1e-6)
        literal = DISTLoss(tau=tau, inter_weight=2.0, intra_weight=3.0,
                           scale_by_tau_squared=False)(torch.tensor(z_s), torch.tensor(z_t))
        assert literal['loss_inter'].item() == pytest.approx(2.0 * inter, rel=1e-6)
        assert literal['loss_intra'].item() == pytest.approx(3.0 * intra, rel=1e-6)
    default = DISTLoss()  # ERKT-Net: tau 2, weights 2, the reference's factor (4x at tau 2)
    inter, intra = hand_dist(z_s, z_t, 2.0)
    out = default(torch.tensor(z_s), torch.tensor(z_t))
    assert out['loss_inter'].item() == pytest.approx(4 * 2.0 * inter, rel=1e-6)
    assert out['loss_intra'].item() == pytest.approx(4 * 2.0 * intra, rel=1e-6)
    at_1 = DISTLoss(tau=1.0)(torch.tensor(z_s), torch.tensor(z_t))['loss_inter']
    at_2 = DISTLoss(tau=2.0)(torch.tensor(z_s), torch.tensor(z_t))['loss_inter']
    assert abs(at_1.item() - at_2.item()) > 1e-3  # the temperature matters


def test_dist_is_zero_for_perfectly_correlated_predictions_and_trains_the_student_only():
    torch.manual_seed(0)
    z_t = torch.randn(6, 5, dtype=torch.float64)
    shifted = z_t + torch.randn(6, 1, dtype=torch.float64) * 3  # the same softmax per row
    out = DISTLoss()(shifted, z_t)  # zero up to the 1e-8 guarding the denominator (x 8)
    assert out['loss_inter'].item() == pytest.approx(0, abs=1e-5)
    assert out['loss_intra'].item() == pytest.approx(0, abs=1e-5)
    z_t = z_t.float()
    z_s = torch.randn(6, 5, requires_grad=True)
    teacher = z_t.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z_s], lr=0.1)
    first = None
    for _ in range(200):
        loss = sum(DISTLoss()(z_s, teacher).values())
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert teacher.grad is None  # the teacher is detached
    assert loss.item() < 0.05 * first


# --- CutMix cross-entropy (eq. 11) ---------------------------------------------------------------


def test_cutmix_scores_and_loss_weights_match_the_pasted_area():
    cfg = Config.fromfile(ERKT)
    batch_augments = cfg.data_preprocessor.batch_augments
    assert batch_augments.probs == [1.0] and batch_augments.augments[0].type == 'CutMix'
    assert Config.fromfile(BASELINE).data_preprocessor.batch_augments.probs == [0.1]
    preprocessor = CLS_MODELS.build(dict(NORM, num_classes=4, batch_augments=batch_augments))
    from mmpretrain.structures import DataSample
    loss_fn = CutMixCrossEntropyLoss()
    partial = 0
    for seed in range(12):
        np.random.seed(seed)
        torch.manual_seed(seed)
        images = [torch.full((3, 16, 16), 40 * k, dtype=torch.uint8) for k in range(4)]
        samples = [DataSample().set_gt_label(k) for k in range(4)]
        data = preprocessor(dict(inputs=images, data_samples=samples), True)
        clean = preprocessor(dict(inputs=[i.clone() for i in images],
                                  data_samples=[DataSample().set_gt_label(k)
                                                for k in range(4)]), False)['inputs']
        mixed, scores = data['inputs'], torch.stack([s.gt_score for s in data['data_samples']])
        logits = torch.randn(4, 4)
        expected = []
        for i in range(4):
            pasted = (mixed[i] != clean[i]).any(0)
            area = pasted.float().mean().item()
            sources = [j for j in range(4) if j != i and torch.equal(
                mixed[i][:, pasted], clean[j][:, pasted])]
            want = torch.zeros(4)
            want[i] += 1 - area
            if area > 0:
                assert len(sources) == 1
                want[sources[0]] += area
                partial += 0 < area < 1
            assert torch.allclose(scores[i], want, atol=1e-6), (seed, i, scores[i], want)
            log_p = F.log_softmax(logits[i], 0)
            ce_b = -log_p[sources[0]] if area > 0 else 0
            expected.append((1 - area) * -log_p[i] + area * ce_b)
        loss = loss_fn(logits, scores, avg_factor=4)
        assert loss.item() == pytest.approx(float(sum(expected)) / 4, rel=1e-5)
    assert partial >= 5  # patches of many sizes were pasted
    labels = torch.tensor([0, 1, 2, 3])
    assert loss_fn(logits, labels).item() == pytest.approx(F.cross_entropy(logits, labels).item())


# --- VSM (Table 1, eq. 1) ---------------------------------------------------------------------


def gfus(config: str):
    pipeline = Config.fromfile(config).train_dataloader.dataset.pipeline
    return [t for t in pipeline if t['type'] == 'GFU']


def test_the_vsm_units_of_the_configs_are_table_1_and_the_usual_augmentation():
    assert [(t['function'], t['prob'], t.get('params', {})) for t in gfus(ERKT)] == TABLE1
    usual = {t['function']: t['prob'] for t in gfus(BASELINE)}
    assert usual == dict(ColorJitter=1.0, RandomRotation=1.0, HorizontalFlip=0.5,
                         VerticalFlip=0.5, Grayscale=0.1, AutoContrast=0.1)
    pipeline = Config.fromfile(ERKT).train_dataloader.dataset.pipeline
    assert pipeline[-2] == dict(type='Resize', scale=(256, 256))  # back to the fixed 256 px


def test_each_vsm_unit_fires_at_its_probability():
    trials = 800
    for function, prob, params in TABLE1 + [('HorizontalFlip', 0.5, {}), ('RandomErasing', 0.0,
                                                                          {})]:
        unit = CLS_TRANSFORMS.build(dict(type='GFU', function=function, prob=prob,
                                         params=dict(params, size=6) if 'size' in params
                                         else params))
        np.random.seed(1)
        torch.manual_seed(1)
        fired = 0
        for _ in range(trials):
            img = np.random.randint(0, 256, (8, 8, 3), dtype=np.uint8)
            out = unit(dict(img=img, img_shape=(8, 8)))
            fired += out[FIRED_KEY] == [function]
        rate, sigma = fired / trials, np.sqrt(prob * (1 - prob) / trials)
        assert abs(rate - prob) <= 4 * sigma + 1e-9, (function, prob, rate)


def test_the_vsm_units_apply_their_functions():
    rng = np.random.default_rng(0)
    img = rng.integers(60, 200, (10, 14, 3), dtype=np.uint8)

    def apply(function, **params):
        return GFU(function, 1.0, params)(dict(img=img.copy(), img_shape=img.shape[:2]))

    assert np.array_equal(apply('HorizontalFlip')['img'], img[:, ::-1])
    assert np.array_equal(apply('VerticalFlip')['img'], img[::-1])
    gray = apply('Grayscale')['img']
    assert (gray == gray[..., :1]).all()  # three equal channels
    # ITU-R 601 luma of the RGB image (the stored image is BGR)
    luma = 0.299 * img[..., 2] + 0.587 * img[..., 1] + 0.114 * img[..., 0]
    assert np.abs(gray[..., 0] - luma).max() < 1.01  # truncated to uint8
    stretched = apply('AutoContrast')['img']
    assert (stretched.reshape(-1, 3).min(0) == 0).all()  # each channel stretched to [0, 255]
    assert (stretched.reshape(-1, 3).max(0) >= 254).all()  # (torchvision truncates)
    cropped = apply('RandomResizedCrop', size=6)
    assert cropped['img'].shape == (6, 6, 3) and cropped['img_shape'] == (6, 6)
    jittered = apply('ColorJitter', brightness=0.5, contrast=0.5, saturation=0.5)['img']
    assert jittered.shape == img.shape and not np.array_equal(jittered, img)
    with pytest.raises(KeyError, match='unknown VSM function'):
        GFU('Solarize', 0.5)


def erased_rectangle(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The mask of changed pixels, checked to be one filled rectangle of about 2-33 % of the
    image (torchvision's default scale, with slack for the rounding of its sides) with the rest
    unchanged."""
    erased = (after != before).any(2)
    assert 0.01 <= erased.mean() <= 0.4
    rows, cols = np.nonzero(erased)
    assert erased[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()
    assert np.array_equal(after[~erased], before[~erased])
    return erased


@pytest.mark.parametrize('config', [ERKT, f'{DEMO}/erkt-net_ensemble-b0_demo_synthetic-nwpu45.py'])
def test_random_erasing_fills_with_the_mean_colour_that_normalises_to_zero(config):
    """The configs' RandomErasing unit, then PackInputs and the config's data preprocessor: the
    erased pixels are the preprocessor's mean, i.e. 0 after normalisation up to the uint8
    rounding (black, the old fill, gives about -2.1); the rest is untouched."""
    cfg = Config.fromfile(config)
    unit = CLS_TRANSFORMS.build(next(t for t in cfg.train_dataloader.dataset.pipeline
                                     if t.get('function') == 'RandomErasing'))
    preprocessor_cfg = dict(cfg.data_preprocessor, type='ClsDataPreprocessor')
    preprocessor_cfg.pop('batch_augments')
    preprocessor = CLS_MODELS.build(preprocessor_cfg)
    pack = CLS_TRANSFORMS.build(dict(type='PackInputs'))
    std = torch.tensor(cfg.data_preprocessor.std)[:, None]
    rng = np.random.default_rng(0)
    for seed in range(5):
        img = rng.integers(140, 256, (40, 56, 3), dtype=np.uint8)  # BGR, far from mean and 0
        torch.manual_seed(seed)
        out = unit(dict(img=img.copy(), img_shape=img.shape[:2]))['img']
        erased = erased_rectangle(img, out)
        normalised = [preprocessor(dict(inputs=[p['inputs']], data_samples=[p['data_samples']]),
                                   False)['inputs'][0]
                      for p in (pack(dict(img=x, img_shape=x.shape[:2])) for x in (out, img))]
        assert (normalised[0][:, torch.from_numpy(erased)].abs() <= 0.5 / std + 1e-6).all()
        assert torch.equal(normalised[0][:, torch.from_numpy(~erased)],
                           normalised[1][:, torch.from_numpy(~erased)])


def test_random_erasing_fill_values_and_default():
    rng = np.random.default_rng(1)
    img = rng.integers(140, 256, (30, 36, 3), dtype=np.uint8)

    def erase(**params):
        torch.manual_seed(0)
        out = GFU('RandomErasing', 1.0, params)(dict(img=img.copy(), img_shape=img.shape[:2]))
        return out['img'][erased_rectangle(img, out['img'])]

    mean_bgr = [104, 116, 124]  # the ImageNet mean (RGB 123.675, 116.28, 103.53) rounded, BGR
    assert (erase() == mean_bgr).all()  # the default fill is the mean colour too
    assert (erase(value=0) == 0).all()  # black, as before, on request
    assert (erase(value=(255, 0, 0)) == [0, 0, 255]).all()  # RGB values, the image is BGR
    assert (erase(value=[10.4, 20.6, 30.5]) == [30, 21, 10]).all()  # rounded, not truncated
    for bad in ('random', (1, 2), 300, -1):
        with pytest.raises(ValueError, match='RandomErasing'):
            GFU('RandomErasing', 1.0, dict(value=bad))


# --- teacher ensemble (section 3.1, eq. 14) ---------------------------------------------------


def test_the_ensemble_is_the_weighted_soft_vote_of_its_members(members):
    ensemble = CLS_MODELS.build(dict(type='TeacherEnsemble', members=members))
    assert isinstance(ensemble, TeacherEnsemble) and ensemble.num_classes == 4
    x = torch.randn(3, 3, 32, 32)
    probs = []
    for member in members:
        model = build_cls_model(tiny_classifier(width={'B0': 4, 'B3': 8, 'R50': 6}[
            member['name']]))
        model.load_state_dict(torch.load(member['checkpoint'])['state_dict'])
        probs.append(F.softmax(model.eval()(x, mode='tensor'), dim=1))
    expected = 0.3 * probs[0] + 0.4 * probs[1] + 0.3 * probs[2]
    with torch.no_grad():
        assert torch.allclose(ensemble(x, mode='tensor').exp(), expected, atol=1e-6)
        predictions = ensemble(x, mode='predict')
    for k, sample in enumerate(predictions):
        assert torch.allclose(sample.pred_score, expected[k], atol=1e-6)
        assert int(sample.pred_label) == int(expected[k].argmax())
    assert not any(p.requires_grad for p in ensemble.parameters())
    assert not ensemble.train().training
    with pytest.raises(ValueError, match='sum to 1'):
        TeacherEnsemble([dict(m, weight=0.5) for m in members])
    with pytest.raises(ValueError, match='normalises its input differently'):
        TeacherEnsemble(members, data_preprocessor=dict(NORM, mean=[0, 0, 0]))


def test_eq14_weights():
    assert eq14_weights(0.4) == pytest.approx([0.4, 0.3, 0.3])
    assert eq14_weights(0.1) == pytest.approx([0.1, 0.45, 0.45])
    assert sum(eq14_weights(0.7, 4)) == pytest.approx(1)


# --- distiller (Figure 4, eq. 12 / 15) --------------------------------------------------------


def test_the_distiller_keeps_the_teacher_frozen_outside_and_computes_eq15(members):
    distiller = CLS_MODELS.build(dict(
        type='ERKTDistiller', student=tiny_classifier(width=4),
        teacher=dict(type='TeacherEnsemble', members=members), ratio=0.5,
        data_preprocessor=NORM))
    assert not any(k.startswith('teacher') for k in distiller.state_dict())
    assert all(n.startswith('student.') for n, _ in distiller.named_parameters())
    distiller.train()
    assert distiller.training and not distiller.teacher.training
    teacher_before = [p.clone() for p in distiller.teacher.parameters()]

    from mmpretrain.structures import DataSample
    torch.manual_seed(0)
    x = torch.randn(8, 3, 32, 32)
    labels = torch.arange(8) % 4
    samples = [DataSample().set_gt_label(int(k)) for k in labels]
    losses = distiller.loss(x, samples)
    logits = distiller.student(x, mode='tensor')
    with torch.no_grad():
        teacher_logits = distiller.teacher(x, mode='tensor')
    dist = DISTLoss()(logits, teacher_logits)
    assert losses['loss_cross'].item() == pytest.approx(
        0.5 * F.cross_entropy(logits, labels).item(), rel=1e-5)
    assert losses['loss_inter'].item() == pytest.approx(1.5 * dist['loss_inter'].item(), rel=1e-5)
    assert losses['loss_intra'].item() == pytest.approx(1.5 * dist['loss_intra'].item(), rel=1e-5)
    hits = (teacher_logits.argmax(1) == labels).float().mean().item()
    assert losses['teacher_acc'].item() == pytest.approx(100 * hits)

    optimizer = torch.optim.Adam(distiller.parameters(), lr=3e-3)
    totals = []
    for _ in range(15):
        loss = sum(v for k, v in distiller.loss(x, samples).items() if k.startswith('loss'))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        totals.append(loss.item())
    assert totals[-1] < 0.7 * totals[0], totals
    assert all(torch.equal(a, b) for a, b in zip(teacher_before, distiller.teacher.parameters()))
    distiller.to(torch.float64)
    assert next(distiller.teacher.parameters()).dtype == torch.float64
    with pytest.raises(ValueError, match='4 classes and the student 3'):
        CLS_MODELS.build(dict(type='ERKTDistiller', student=tiny_classifier(3, width=4),
                              teacher=dict(type='TeacherEnsemble', members=members),
                              data_preprocessor=NORM))


def test_a_training_step_feeds_the_teacher_the_mixed_batch_and_keeps_its_statistics(members):
    """``train_step`` through the data preprocessor with CutMix at probability 1: every teacher
    member receives the very tensor the student receives, and it is the mixed batch (not the
    clean one); ``teacher_acc`` is the ensemble's top-1 on it against the mixed labels' main
    class; the teacher's BatchNorm statistics stay as loaded while the student's move."""
    from mmengine.optim import OptimWrapper
    from mmpretrain.structures import DataSample
    cutmix = dict(augments=[dict(type='CutMix', alpha=1.0)], probs=[1.0])
    distiller = CLS_MODELS.build(dict(
        type='ERKTDistiller', student=tiny_classifier(width=4),
        teacher=dict(type='TeacherEnsemble', members=members),
        data_preprocessor=dict(NORM, num_classes=4, batch_augments=cutmix)))
    distiller.train()
    seen = []
    distiller.student.backbone.register_forward_pre_hook(
        lambda module, args: seen.append(('student', args[0].detach().clone())))
    for member in distiller.teacher.members:
        member.backbone.register_forward_pre_hook(
            lambda module, args: seen.append(('teacher', args[0].detach().clone())))
    teacher_state = {k: v.clone() for k, v in distiller.teacher.state_dict().items()}
    assert any(k.endswith('running_mean') for k in teacher_state)
    student_bn = next(m for m in distiller.student.modules() if isinstance(m, torch.nn.BatchNorm2d))
    student_mean = student_bn.running_mean.clone()
    optim_wrapper = OptimWrapper(torch.optim.SGD(distiller.parameters(), lr=0.1))
    rng = np.random.default_rng(0)
    images = [torch.from_numpy(rng.integers(0, 256, (3, 24, 24), dtype=np.uint8))
              for _ in range(8)]
    mixed_samples = 0
    for step in range(3):
        np.random.seed(step)
        torch.manual_seed(step)
        samples = [DataSample().set_gt_label(k % 4) for k in range(8)]
        clean = distiller.data_preprocessor(dict(inputs=[i.clone() for i in images]), False)
        seen.clear()
        log_vars = distiller.train_step(dict(inputs=[i.clone() for i in images],
                                             data_samples=samples), optim_wrapper)
        assert [who for who, _ in seen] == ['student'] + ['teacher'] * 3
        student_input = seen[0][1]
        for _, teacher_input in seen[1:]:
            assert torch.equal(teacher_input, student_input)
        for i in range(8):
            pasted = (student_input[i] != clean['inputs'][i]).any(0)
            if pasted.any():  # a rectangle of another image of the batch
                mixed_samples += 1
                assert any(torch.equal(student_input[i][:, pasted], clean['inputs'][j][:, pasted])
                           for j in range(8) if j != i)
        scores = torch.stack([s.gt_score for s in samples])
        with torch.no_grad():
            teacher_top1 = distiller.teacher.probs(student_input).argmax(1)
        expected = 100 * (teacher_top1 == scores.argmax(1)).float().mean().item()
        assert log_vars['teacher_acc'].item() == pytest.approx(expected)
    assert mixed_samples >= 6
    assert all(torch.equal(v, distiller.teacher.state_dict()[k]) for k, v in teacher_state.items())
    assert not torch.allclose(student_bn.running_mean, student_mean)


# --- analyses (section 4.2, 4.4) ---------------------------------------------------------------


def test_grad_cam_of_a_pooled_linear_head_is_the_class_activation_map():
    torch.manual_seed(0)
    model = build_cls_model(tiny_classifier(width=4)).eval()
    x = torch.randn(2, 3, 64, 64)
    targets = torch.tensor([1, 3])
    maps, logits = grad_cam(model, x, targets)
    with torch.no_grad():
        features = model.backbone(x)[-1]
        weight = model.head.fc.weight[targets]  # d y_c / d A_k = W_ck / (h w), constant
        cam = F.relu(torch.einsum('nk,nkhw->nhw', weight, features))[:, None]
        cam = F.interpolate(cam, size=(64, 64), mode='bilinear', align_corners=False)[:, 0]
        cam = cam / cam.flatten(1).max(1).values[:, None, None]
    assert torch.allclose(maps, cam, atol=1e-5)
    assert torch.allclose(logits, model(x, mode='tensor').detach(), atol=1e-5)


def test_tsne_calibrates_the_perplexity_and_separates_clusters():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (20, 10)), rng.normal(8, 1, (20, 10))])
    sq = ((x[:, None] - x[None]) ** 2).sum(-1)
    p = conditional_probabilities(sq, perplexity=5.0)
    entropy = -(p * np.log(np.where(p > 0, p, 1))).sum(1)
    assert np.allclose(entropy, np.log(5.0), atol=1e-4) and np.allclose(p.sum(1), 1)
    y = tsne(x, perplexity=5.0, num_iters=1000)
    distances = ((y[:, None] - y[None]) ** 2).sum(-1)
    np.fill_diagonal(distances, np.inf)
    nearest = distances.argmin(1)
    assert ((nearest < 20) == (np.arange(40) < 20)).all()


def test_the_confusion_matrix_png_is_row_normalised(tmp_path):
    matrix = torch.tensor([[8, 2, 0], [1, 4, 5], [0, 0, 0]])
    out = tmp_path / 'cm.png'
    normalised = save_confusion_matrix(matrix, str(out), ['a', 'b', 'c'])
    assert np.allclose(normalised, [[0.8, 0.2, 0], [0.1, 0.4, 0.5], [0, 0, 0]])
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


# --- configs -----------------------------------------------------------------------------------


def test_the_classification_configs_exist_and_are_consistent():
    names = {osp.relpath(p, osp.join(REPO, 'configs/erkt-net'))
             for p in glob.glob(osp.join(REPO, 'configs/erkt-net/**/*.py'), recursive=True)}
    settings = {'aid': (30, (20, 50)), 'nwpu45': (45, (10, 20)), 'afgr50': (50, (10, 20, 30))}
    for dataset, (num_classes, ratios) in settings.items():
        for ratio in ratios:
            setting = f'{dataset}-tr{ratio}'
            for arch in ('efficientnet-b0', 'efficientnet-b3', 'resnet50'):
                assert f'teachers/{arch}_600e_{setting}.py' in names
            cfg = Config.fromfile(osp.join(REPO, f'configs/erkt-net/erkt-net_ensemble-b0_600e_'
                                           f'{setting}.py'))
            assert cfg.model.student.head.num_classes == num_classes
            assert cfg.train_dataloader.dataset.train_ratio == ratio / 100
            assert cfg.test_dataloader.dataset.split == 'test'
            assert cfg.test_dataloader.dataset.train_ratio == ratio / 100
            assert [m.weight for m in cfg.model.teacher.members] == [0.3, 0.4, 0.3]
            for member in cfg.model.teacher.members:
                assert osp.isfile(osp.join(REPO, member.config))
            assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=2e-4, weight_decay=1e-6)
            assert cfg.train_cfg.max_epochs == 600 and cfg.train_dataloader.batch_size == 30
            assert cfg.param_scheduler[0].type == 'CosineAnnealingLR'
            assert f'ensemble_b0-b3-r50_{setting}.py' in names
    for ratio in (10, 20):
        assert f'baseline_efficientnet-b0_600e_nwpu45-tr{ratio}.py' in names
        for epochs in (600, 3000):
            cfg = Config.fromfile(osp.join(REPO, f'configs/erkt-net/dist_ensemble-b0_{epochs}e_'
                                           f'nwpu45-tr{ratio}.py'))
            assert cfg.train_cfg.max_epochs == epochs and cfg.model.distill_loss.tau == 1.0


def test_every_distillation_config_has_the_papers_loss_and_augmentation():
    """All distiller configs under configs/erkt-net (demo included): ERKT-Net is tau 2, weights
    2.0, the DIST reference's tau^2, R = 1, the Table 1 VSM and CutMix 1.0 (eq. 12, section
    3.5); "original DIST" (Table 9) is tau 1, weights 2.0, R = 1, the usual augmentation and
    CutMix 0.1. Every RandomErasing unit fills with its data preprocessor's mean."""
    paths = [p for p in glob.glob(osp.join(REPO, 'configs/erkt-net/**/*.py'), recursive=True)
             if '_base_' not in p and '/teachers/' not in p]
    kinds = []
    for path in paths:
        cfg = Config.fromfile(path)
        name = osp.basename(path)
        units = [(t['function'], t['prob'], t.get('params', {})) for t in
                 cfg.train_dataloader.dataset.pipeline if t['type'] == 'GFU']
        for function, _, params in units:
            if function == 'RandomErasing':
                assert params['value'] == cfg.data_preprocessor.mean, name
        if cfg.model.type != 'ERKTDistiller':
            continue
        cutmix = cfg.data_preprocessor.batch_augments
        assert [a.type for a in cutmix.augments] == ['CutMix'] and cfg.model.ratio == 1.0, name
        if name.startswith('erkt-net_'):
            kinds.append('erkt-net')
            assert cfg.model.distill_loss == dict(type='DISTLoss', tau=2.0, inter_weight=2.0,
                                                  intra_weight=2.0, scale_by_tau_squared=True)
            assert cutmix.probs == [1.0], name
            crop = 44 if '/demo/' in path else 176  # 176 / 256 of the demo's 64 px
            assert units == [u if u[0] != 'RandomResizedCrop' else (u[0], u[1], dict(size=crop))
                             for u in TABLE1], name
        else:
            assert name.startswith('dist_ensemble-b0_'), name
            kinds.append('dist')
            assert cfg.model.distill_loss == dict(type='DISTLoss', tau=1.0, inter_weight=2.0,
                                                  intra_weight=2.0)
            assert cutmix.probs == [0.1], name
            assert 'RandomErasing' not in [u[0] for u in units], name
        loss = build_cls_model(cfg.model.distill_loss)
        assert loss.scale_by_tau_squared  # the DIST reference (a no-op at tau 1)
    assert sorted(kinds) == ['dist'] * 5 + ['erkt-net'] * 8


def test_the_configs_build_their_models(tmp_path):
    """One config of each kind builds (members with random checkpoints of their configs)."""
    erkt = Config.fromfile(osp.join(REPO, 'configs/erkt-net',
                                    'erkt-net_ensemble-b0_600e_aid-tr20.py'))
    from ifkd_mm.classification import classifier_config
    for member in erkt.model.teacher.members:
        model = build_cls_model(classifier_config(osp.join(REPO, member.config)))
        member.checkpoint = str(tmp_path / f'{member.name}.pth')
        member.config = osp.join(REPO, member.config)
        torch.save(dict(state_dict=model.state_dict()), member.checkpoint)
    erkt.model.data_preprocessor = erkt.data_preprocessor
    distiller = build_cls_model(erkt.model)
    assert distiller.teacher.num_classes == 30
    assert [type(m.backbone).__name__ for m in distiller.teacher.members] == \
        ['EfficientNet', 'EfficientNet', 'ResNet']
    student = sum(p.numel() for p in distiller.parameters())
    assert 4.0e6 < student < 4.1e6  # EfficientNet-B0 with a 30-class head (Table 2: 5.3 M at 1000)


# --- end to end through the tools ---------------------------------------------------------------


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO, 'tools/erkt', name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_end_to_end_teachers_ensemble_distillation_and_test(tmp_path, capsys):
    """Three teachers trained, ensembled and evaluated, the eq. 14 search, a student distilled
    and tested, all through the tools on synthetic class folders (1 epoch each)."""
    from ifkd_mm.datasets.synthetic import make_nwpu45
    data_root = make_nwpu45(str(tmp_path), per_class=6, img_size=32, seed=0) + '/'
    data = [f'{split}_dataloader.dataset.data_root={data_root}'
            for split in ('train', 'val', 'test')]
    one_epoch = ['train_cfg.max_epochs=1', 'randomness.seed=0', 'default_hooks.logger.interval=1']
    checkpoints = {}
    for arch in ('efficientnet-b0', 'efficientnet-b3', 'resnet50'):
        work_dir = str(tmp_path / arch)
        run([sys.executable, 'tools/train.py', f'{DEMO}/{arch}_demo_synthetic-nwpu45.py',
             '--work-dir', work_dir, '--cfg-options', *data, *one_epoch], timeout=600)
        checkpoints[arch] = osp.join(work_dir, 'epoch_1.pth')
        assert osp.isfile(checkpoints[arch])
    members = [f'model.{{}}members.{k}.checkpoint={checkpoints[a]}' for k, a in enumerate(
        ('efficientnet-b0', 'efficientnet-b3', 'resnet50'))]

    ensemble = f'{DEMO}/ensemble_b0-b3-r50_demo_synthetic-nwpu45.py'
    ensemble_dir = tmp_path / 'ensemble'
    output = run([sys.executable, 'tools/test.py', ensemble, '--work-dir', str(ensemble_dir),
                  '--cfg-options', *data, *[m.format('') for m in members]], timeout=600)
    ensemble_oa = float(output.split('accuracy/top1: ')[1].split()[0])
    search_out = tmp_path / 'search.json'
    load_tool('search_weights').main([ensemble, '--split', 'test', '--out', str(search_out),
                                      '--cfg-options', *data, *[m.format('') for m in members]])
    table = capsys.readouterr().out
    assert '| 0.30 | 0.40 | 0.30 |' in table  # W_B3 = 0.4 (eq. 14)
    rows = json.loads(search_out.read_text())
    assert [round(r['weights']['B3'], 6) for r in rows] == [k / 10 for k in range(1, 10)]
    paper = next(r for r in rows if abs(r['weights']['B3'] - 0.4) < 1e-9)
    assert paper['weights']['B0'] == pytest.approx(0.3) == paper['weights']['R50']
    assert paper['accuracy'] == pytest.approx(ensemble_oa, abs=1e-3)  # same split, same vote

    erkt = f'{DEMO}/erkt-net_ensemble-b0_demo_synthetic-nwpu45.py'
    student_dir = tmp_path / 'erkt'
    run([sys.executable, 'tools/train.py', erkt, '--work-dir', str(student_dir), '--cfg-options',
         *data, *one_epoch, *[m.format('teacher.') for m in members]], timeout=600)
    checkpoint = torch.load(student_dir / 'epoch_1.pth', map_location='cpu')
    assert checkpoint['state_dict'] and all(k.startswith('student.')
                                            for k in checkpoint['state_dict'])
    scalars = [json.loads(line) for line in open(glob.glob(
        str(student_dir / '*' / 'vis_data' / 'scalars.json'))[0])]
    assert all(k in scalars[0] for k in ('loss_cross', 'loss_inter', 'loss_intra'))
    train_rows = [s for s in scalars if 'loss' in s]  # teacher accuracy on the augmented batches
    assert train_rows and all(0 <= s.get('teacher_acc', -1) <= 100 for s in train_rows)

    test_dir = student_dir / 'test'
    output = run([sys.executable, 'tools/test.py', erkt, str(student_dir / 'epoch_1.pth'),
                  '--work-dir', str(test_dir), '--cfg-options', *data,
                  *[m.format('teacher.') for m in members]], timeout=600)
    printed = float(output.split('accuracy/top1: ')[1].split()[0])
    metrics = json.loads((test_dir / 'metrics.json').read_text())
    assert printed == pytest.approx(metrics['accuracy/top1'])
    matrix = np.array(metrics['confusion_matrix/result'])
    assert matrix.shape == (5, 5) and matrix.sum() == 15  # 5 classes x 3 test images
    assert printed == pytest.approx(100 * np.trace(matrix) / matrix.sum(), abs=1e-3)
    assert (test_dir / 'confusion_matrix.png').read_bytes()[:4] == b'\x89PNG'
