"""tools/train.py, tools/test.py and tools/dist_train.sh on a real (tiny) training run."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from .conftest import REPO

DEMO = osp.join(REPO, 'configs/demo/retinanet_r18_fpn_demo_synthetic-shiprs.py')


def tiny_config(tmp_path, data_root: str, max_epochs: int, checkpoint_interval: int) -> str:
    """The demo config on the session's small synthetic data, 128 px, batch 2, no workers."""
    shiprs = osp.join(data_root, 'ShipRSImageNet') + '/'
    path = tmp_path / f'tiny_{max_epochs}e.py'
    path.write_text(f"""
_base_ = {DEMO!r}
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


def run(args, env=None, timeout=900):
    full_env = dict(os.environ, PYTHON=sys.executable, **(env or {}))
    result = subprocess.run(args, cwd=REPO, env=full_env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f'{args} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}'
    return result.stdout + result.stderr


def scalars(work_dir: str) -> list:
    runs = sorted(d for d in os.listdir(work_dir) if osp.isdir(osp.join(work_dir, d, 'vis_data')))
    with open(osp.join(work_dir, runs[-1], 'vis_data', 'scalars.json')) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope='module')
def trained(synthetic_root, tmp_path_factory):
    """A 16-epoch run (48 iterations) through tools/train.py, checkpoints at epochs 8 and 16."""
    tmp_path = tmp_path_factory.mktemp('train')
    config = tiny_config(tmp_path, synthetic_root, max_epochs=16, checkpoint_interval=8)
    work_dir = str(tmp_path / 'work')
    run([sys.executable, 'tools/train.py', config, '--work-dir', work_dir])
    return config, work_dir


def test_training_lowers_the_loss(trained):
    _, work_dir = trained
    losses = [row['loss'] for row in scalars(work_dir) if 'loss' in row]
    assert len(losses) == 48
    first, last = sum(losses[:6]) / 6, sum(losses[-6:]) / 6  # two epochs each
    assert last < 0.9 * first, losses


def test_checkpoints_load_with_torch_safe_loading_only_through_ifkd_mm(trained):
    _, work_dir = trained
    checkpoint = osp.join(work_dir, 'epoch_8.pth')
    probe = 'import torch, sys; torch.load(sys.argv[1]); print("loaded")'
    plain = subprocess.run([sys.executable, '-c', probe, checkpoint], capture_output=True,
                           text=True)
    assert plain.returncode != 0 and 'Weights only load failed' in plain.stderr
    fixed = subprocess.run([sys.executable, '-c', 'import ifkd_mm; ' + probe, checkpoint],
                           capture_output=True, text=True)
    assert fixed.returncode == 0 and 'loaded' in fixed.stdout, fixed.stderr
    assert torch.load(checkpoint)['meta']['epoch'] == 8


def test_resume_continues_from_the_checkpoint(trained, tmp_path):
    config, work_dir = trained
    resumed_dir = str(tmp_path / 'resumed')
    output = run([sys.executable, 'tools/train.py', config, '--work-dir', resumed_dir,
                  '--resume', osp.join(work_dir, 'epoch_8.pth')])
    assert 'resumed epoch: 8, iter: 24' in output
    steps = [row['step'] for row in scalars(resumed_dir) if 'loss' in row]
    assert steps == list(range(25, 49))
    assert not osp.exists(osp.join(resumed_dir, 'epoch_8.pth'))  # not retrained
    assert torch.load(osp.join(resumed_dir, 'epoch_16.pth'))['meta']['iter'] == 48


def test_resume_of_a_missing_checkpoint_is_a_clear_error(trained, tmp_path):
    config, _ = trained
    result = subprocess.run([sys.executable, 'tools/train.py', config, '--resume',
                             str(tmp_path / 'nope.pth')], cwd=REPO, capture_output=True,
                            text=True)
    assert result.returncode != 0 and 'nope.pth does not exist' in result.stderr


def test_test_tool_prints_coco_metrics_and_dumps_predictions(trained, tmp_path):
    config, work_dir = trained
    out = run([sys.executable, 'tools/test.py', config, osp.join(work_dir, 'epoch_16.pth'),
               '--work-dir', str(tmp_path / 'test'), '--out', str(tmp_path / 'preds.pkl')])
    metrics = json.load(open(tmp_path / 'test' / 'metrics.json'))
    assert {'coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75'} <= set(metrics)
    assert f"coco/bbox_mAP: {metrics['coco/bbox_mAP']}" in out
    assert osp.getsize(tmp_path / 'preds.pkl') > 0


def test_distributed_training_with_gloo_on_two_processes(synthetic_root, tmp_path):
    config = tiny_config(tmp_path, synthetic_root, max_epochs=1, checkpoint_interval=1)
    work_dir = str(tmp_path / 'dist')
    output = run(['bash', 'tools/dist_train.sh', config, '2', '--work-dir', work_dir,
                  '--cfg-options', 'env_cfg.dist_cfg.backend=gloo'],
                 env=dict(PORT='29517', OMP_NUM_THREADS='1'))
    assert 'Distributed training: True' in output and 'GPU number: 2' in output
    checkpoint = torch.load(osp.join(work_dir, 'epoch_1.pth'))
    # 6 images, batch 2 per process, 2 processes: 2 iterations per epoch (not 3)
    assert checkpoint['meta']['iter'] == 2
    assert not any(key.startswith('module.') for key in checkpoint['state_dict'])
