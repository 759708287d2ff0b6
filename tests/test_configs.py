"""Every config parses; every model builds (distillers with a saved teacher of their config);
IFKD loss weights and the learning rates the schedules train with."""
import glob
import inspect
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from ifkd_mm.registry import MODELS

from .conftest import REPO

ALL_CONFIGS = sorted(p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                                         recursive=True) if '_base_' not in p)
# MutDet's pseudo-label configs describe tools/mutdet/make_pseudo_labels.py's parts, not a run
PSEUDO_LABEL_CONFIGS = [p for p in ALL_CONFIGS if osp.basename(p).startswith('pseudo-labels_')]
CONFIGS = [p for p in ALL_CONFIGS if p not in PSEUDO_LABEL_CONFIGS]


def test_the_expected_configs_exist():
    names = {osp.relpath(p, osp.join(REPO, 'configs')) for p in CONFIGS}
    for detector in ('retinanet', 'faster-rcnn'):
        for backbone in ('r50', 'r18', 'mnv2'):
            for dataset in ('shiprs', 'sar-aircraft'):
                assert f'detectors/{detector}_{backbone}_fpn_100e_{dataset}.py' in names
    for method in ('fitnet', 'at', 'fkd', 'insdist', 'fgd', 'frs', 'arsd'):
        for dataset in ('shiprs', 'sar-aircraft'):
            assert f'baselines/{method}_retinanet_r50-mnv2_fpn_100e_{dataset}.py' in names


@pytest.fixture(scope='module')
def teacher_checkpoints(tmp_path_factory):
    """A randomly initialised checkpoint per teacher config, made on first use."""
    folder, made = tmp_path_factory.mktemp('teachers'), {}

    def checkpoint(config: str) -> str:
        if config not in made:
            model_cfg = Config.fromfile(osp.join(REPO, config)).model
            model_cfg.backbone.init_cfg = None
            path = str(folder / f'{len(made)}.pth')
            torch.save(dict(state_dict=MODELS.build(model_cfg).state_dict()), path)
            made[config] = path
        return made[config]
    return checkpoint


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, REPO))
def test_config_builds_its_model(path, teacher_checkpoints, monkeypatch):
    monkeypatch.chdir(REPO)
    cfg = Config.fromfile(path)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model_cfg = cfg.model
    if model_cfg.type == 'DetectionDistiller':
        model_cfg.teacher.checkpoint = teacher_checkpoints(model_cfg.teacher.config)
        assert osp.isfile(model_cfg.teacher.config)
    members = {'TeacherEnsemble': lambda: model_cfg.members,
               'ERKTDistiller': lambda: model_cfg.teacher.members}.get(model_cfg.type, list)()
    for member in members:
        member.checkpoint = teacher_checkpoints(member.config)
    model = MODELS.build(model_cfg)
    frozen = model_cfg.type == 'TeacherEnsemble'  # trained members only, nothing to train
    assert sum(p.numel() for p in model.parameters() if p.requires_grad or frozen) > 0
    assert cfg.train_dataloader.dataset.type
    if model_cfg.type == 'MutDet':  # pre-training on pseudo-labels: nothing to evaluate
        assert cfg.val_dataloader is None and cfg.test_dataloader is None
        return
    for dataloader in ('val_dataloader', 'test_dataloader'):
        assert cfg[dataloader].dataset.type
    assert cfg.val_evaluator and cfg.test_evaluator


@pytest.mark.parametrize('path', PSEUDO_LABEL_CONFIGS, ids=lambda p: osp.relpath(p, REPO))
def test_pseudo_label_configs_name_registered_parts(path):
    from ifkd_mm.pretraining.mutdet import PSEUDO_LABEL_PARTS

    cfg = Config.fromfile(path)
    for part in (cfg.mask_generator, cfg.embedder):
        assert PSEUDO_LABEL_PARTS.get(part.type) is not None, part.type
    assert set(cfg.box_filter) == {'min_area', 'min_side'}
    if '/demo/' not in path:  # the paper's: 256-d PCA, 256 clusters, 1.5x crops of 224 px
        assert (cfg.clustering.dim, cfg.clustering.num_clusters) == (256, 256)
        assert (cfg.embedder.crop_size, cfg.embedder.enlarge) == (224, 1.5)


# ------------------------------------------------ IFKD loss weights and the training schedules
def configs_in(*folders: str) -> list:
    """The configs directly under ``configs/<folder>`` for each of ``folders``."""
    return [p for p in CONFIGS
            if osp.relpath(osp.dirname(p), osp.join(REPO, 'configs')) in folders]


IFKD_CONFIGS = [p for p in configs_in('ifkd', 'demo') if osp.basename(p).startswith('ifkd')]
SCHEDULE_100E = [p for p in configs_in('detectors', 'ifkd', 'baselines')
                 if '_100e_' in osp.basename(p)]
DEMOS = configs_in('demo')


def loss_weight(loss_cfg, name: str) -> float:
    """A loss config's weight ``name``, or the loss class's default when the config omits it."""
    default = inspect.signature(MODELS.get(loss_cfg['type'])).parameters[name].default
    return loss_cfg.get(name, default)


def test_ifkd_configs_are_found():
    names = {osp.relpath(p, osp.join(REPO, 'configs')) for p in IFKD_CONFIGS}
    assert {'ifkd/ifkd-paper-weights_retinanet_r50-mnv2_fpn_100e_shiprs.py',
            'ifkd/ifkd-paper-weights_retinanet_r50-mnv2_fpn_100e_sar-aircraft.py',
            'demo/ifkd_retinanet_r34-r18_fpn_demo_synthetic-shiprs.py'} < names
    assert len(names) >= 18 and len(SCHEDULE_100E) >= 30 and len(DEMOS) == 5


@pytest.mark.parametrize('path', IFKD_CONFIGS, ids=lambda p: osp.relpath(p, REPO))
def test_ifkd_loss_weights_are_the_released_codes_or_in_the_variant_the_papers(path):
    """1e-4 / 1e-3 (the authors' code, our normalisation); 0.06 / 0.5 only in the paper variant;
    the demo's beta is 0.2 (36 class channels, its config says why)."""
    losses = {loss['type']: loss for loss in Config.fromfile(path).model.distill_losses}
    paper = osp.basename(path).startswith('ifkd-paper-weights_')
    demo = osp.basename(osp.dirname(path)) == 'demo'
    assert loss_weight(losses['IFKDFeatureLoss'], 'alpha') == (0.06 if paper else 1e-4)
    assert loss_weight(losses['IFKDHeadLoss'], 'beta') == (0.5 if paper else 0.2 if demo else 1e-3)
    if paper:  # otherwise the run it inherits
        base = Config.fromfile(path.replace('ifkd-paper-weights_', 'ifkd_')).model
        for loss, base_loss in zip(Config.fromfile(path).model.distill_losses,
                                   base.distill_losses):
            assert {k: v for k, v in loss.items() if k not in ('alpha', 'beta')} == \
                {k: v for k, v in base_loss.items() if k not in ('alpha', 'beta')}


def training_lr(cfg, world_size: int = 1) -> float:
    """The lr mmengine's Runner trains with: the config's optimizer after ``Runner.scale_lr``."""
    from mmengine.logging import MMLogger
    from mmengine.optim import build_optim_wrapper
    from mmengine.runner import Runner

    wrapper = build_optim_wrapper(torch.nn.Linear(1, 1), cfg.optim_wrapper)
    runner = SimpleNamespace(world_size=world_size, _train_dataloader=cfg.train_dataloader,
                             param_schedulers=None, logger=MMLogger.get_current_instance())
    Runner.scale_lr(runner, wrapper, cfg.get('auto_scale_lr'))
    return wrapper.optimizer.param_groups[0]['lr']


@pytest.mark.parametrize('path', SCHEDULE_100E, ids=lambda p: osp.relpath(p, REPO))
def test_100e_schedule_scales_the_lr_of_mmdetections_batch_of_16_to_the_real_batch(path):
    """IFKD section 4.1: mmdetection's default configs (8 GPUs x 2 images), 1x, 100 epochs."""
    cfg = Config.fromfile(path)
    base_lr = 0.02 if 'faster-rcnn' in osp.basename(path) else 0.01
    assert cfg.auto_scale_lr == dict(enable=True, base_batch_size=16)
    assert cfg.optim_wrapper.optimizer == dict(type='SGD', lr=base_lr, momentum=0.9,
                                               weight_decay=0.0001)
    assert cfg.train_dataloader.batch_size == 2 and cfg.train_cfg.max_epochs == 100
    assert training_lr(cfg) == pytest.approx(base_lr / 8)  # one GPU, 2 images
    assert training_lr(cfg, world_size=8) == pytest.approx(base_lr)


@pytest.mark.parametrize('path', DEMOS, ids=lambda p: osp.relpath(p, REPO))
def test_demo_configs_keep_their_own_lr(path):
    cfg = Config.fromfile(path)
    assert not cfg.auto_scale_lr.enable
    assert cfg.optim_wrapper.optimizer.type == 'AdamW' and training_lr(cfg) == 1e-3


DEMO_ROOTS = ['configs/demo/retinanet_r18_fpn_demo_synthetic-shiprs.py',
              'configs/kd-rnet/demo/rotated-retinanet_r18_fpn_demo_synthetic-dota.py',
              'configs/ars-detr/demo/ars-detr_r18_demo_synthetic-dota.py']


def demo_runner_weights(path: str, work_dir: str, seed) -> dict:
    """The initial weights of the runner tools/train.py (and tools/test.py without a checkpoint)
    build for ``path``: built after the runner seeds itself, then ``init_weights()``."""
    from mmengine.runner import Runner

    cfg = Config.fromfile(osp.join(REPO, path))
    cfg.work_dir, cfg.randomness.seed = work_dir, seed
    cfg.model.backbone.init_cfg = None
    model = Runner.from_cfg(cfg).model
    model.init_weights()
    return {key: value.clone() for key, value in model.state_dict().items()}


@pytest.mark.parametrize('path', DEMO_ROOTS)
def test_demo_configs_seed_their_runs(path, tmp_path):
    """Every demo config inherits one of these roots: a run starts from the same weights on every
    call (the untrained model's mAP is the same); without the seed it is not."""
    first, again = (demo_runner_weights(path, str(tmp_path / name), 0) for name in 'ab')
    assert first.keys() == again.keys()
    assert all(torch.equal(first[key], again[key]) for key in first)
    if path == DEMO_ROOTS[0]:
        unseeded = [demo_runner_weights(path, str(tmp_path / name), None) for name in 'cd']
        assert not torch.equal(unseeded[0]['backbone.conv1.weight'],
                               unseeded[1]['backbone.conv1.weight'])
