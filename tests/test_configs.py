"""Every config parses; every model builds (distillers with a saved teacher of their config)."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from ifkd_mm.registry import MODELS

from .conftest import REPO

CONFIGS = sorted(p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p)


def test_the_expected_configs_exist():
    names = {osp.relpath(p, osp.join(REPO, 'configs')) for p in CONFIGS}
    for detector in ('retinanet', 'faster-rcnn'):
        for backbone in ('r50', 'r18', 'mnv2'):
            for dataset in ('shiprs', 'sar-aircraft'):
                assert f'detectors/{detector}_{backbone}_fpn_100e_{dataset}.py' in names
    for method in ('fitnet', 'at', 'fgd', 'frs'):
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
    for dataloader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[dataloader].dataset.type
    assert cfg.val_evaluator and cfg.test_evaluator
