"""Shared fixtures: small synthetic datasets written once per session in the official layouts."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault('OMP_NUM_THREADS', '2')

SMALL = dict(num_train=6, num_val=3, img_size=128, seed=0)
DEMO = osp.join(REPO, 'configs/demo/retinanet_r18_fpn_demo_synthetic-shiprs.py')


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory) -> str:
    """Root folder holding every synthetic detection dataset (small) and the scene folders."""
    from ifkd_mm.datasets import synthetic

    root = str(tmp_path_factory.mktemp('synthetic'))
    for name in ('shiprs', 'sar_aircraft', 'dota', 'dior_r', 'hrsc2016'):
        synthetic.MAKERS[name](root, **SMALL)
    synthetic.make_scene_folders(root, 'NWPU-RESISC45', ('airplane', 'beach', 'bridge'),
                                 per_class=10, img_size=32, seed=0)
    return root


@pytest.fixture(autouse=True)
def mmdet_scope():
    """Every test starts in the mmdet scope (tests of other scopes switch themselves)."""
    from mmengine.registry import init_default_scope

    init_default_scope('mmdet')


def tiny_config(tmp_path, data_root: str, max_epochs: int, checkpoint_interval: int,
                base: str = DEMO, name: str = 'tiny') -> str:
    """``base`` (a demo config) on the session's small synthetic data, 128 px, batch 2."""
    shiprs = osp.join(data_root, 'ShipRSImageNet') + '/'
    path = tmp_path / f'{name}_{max_epochs}e.py'
    path.write_text(f"""
_base_ = {base!r}
img_scale = (128, 128)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root={shiprs!r}, pipeline=train_pipeline))
val_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                      dataset=dict(data_root={shiprs!r}, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file={shiprs!r} + 'COCO_Format/ShipRSImageNet_bbox_val_level_3.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs={max_epochs}, val_interval={max_epochs})
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end={max_epochs})]
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval={checkpoint_interval}, max_keep_ckpts=10))
randomness = dict(seed=0)
log_processor = dict(window_size=1)
""")
    return str(path)


def run(args, env=None, timeout=900) -> str:
    """Run a command in the repository root; its output, or a failure showing it."""
    full_env = dict(os.environ, PYTHON=sys.executable, **(env or {}))
    result = subprocess.run(args, cwd=REPO, env=full_env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f'{args} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}'
    return result.stdout + result.stderr


def scalars(work_dir: str) -> list:
    """The rows of the latest run's ``vis_data/scalars.json`` in a work dir."""
    runs = sorted(d for d in os.listdir(work_dir) if osp.isdir(osp.join(work_dir, d, 'vis_data')))
    with open(osp.join(work_dir, runs[-1], 'vis_data', 'scalars.json')) as f:
        return [json.loads(line) for line in f]
