"""tools/train.py, tools/test.py, dist_train.sh and dist_test.sh on a real (tiny) training run."""
import json
import os.path as osp
import subprocess
import sys

import mmengine
import pytest
import torch

from .conftest import REPO, run, scalars, tiny_config


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


def test_distributed_testing_gives_the_single_process_predictions(trained, tmp_path):
    config, work_dir = trained
    checkpoint = osp.join(work_dir, 'epoch_16.pth')
    run([sys.executable, 'tools/test.py', config, checkpoint, '--work-dir', str(tmp_path / 'one'),
         '--out', str(tmp_path / 'one.pkl')])
    output = run(['bash', 'tools/dist_test.sh', config, checkpoint, '2',
                  '--work-dir', str(tmp_path / 'two'), '--out', str(tmp_path / 'two.pkl'),
                  '--cfg-options', 'env_cfg.dist_cfg.backend=gloo'],
                 env=dict(PORT='29518', OMP_NUM_THREADS='1'))
    assert 'Distributed training: True' in output and 'GPU number: 2' in output
    single = mmengine.load(tmp_path / 'one.pkl')
    distributed = mmengine.load(tmp_path / 'two.pkl')
    assert len(distributed) == len(single) == 3  # 2 + 2 per rank: the padding sample is dropped
    assert sum(len(p['pred_instances']['bboxes']) for p in single) > 0
    for one, two in zip(single, distributed):
        assert one['img_id'] == two['img_id']
        torch.testing.assert_close(two['pred_instances']['bboxes'],
                                   one['pred_instances']['bboxes'], rtol=1e-4, atol=1e-3)
    metrics = (json.load(open(tmp_path / name / 'metrics.json')) for name in ('one', 'two'))
    assert next(metrics) == pytest.approx(next(metrics))
