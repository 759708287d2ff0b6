"""tools/run_demo.sh, the main command, end to end on a tiny synthetic copy (one epoch each):
teacher, student alone and IFKD-distilled student, one line per stage, the table as markdown
and JSON, the comparison picture and the loss curves; then the distillation's checkpoint, tested
as a distiller, against its exported student."""
import json
import os
import re
import subprocess
import sys

import cv2
import torch

import ifkd_mm  # noqa: F401 (mmengine checkpoints load with torch's safe default)

from .conftest import REPO, run, scalars

DEMO = 'configs/demo/{}.py'
DISTILLED = 'ifkd_retinanet_r34-r18_fpn_demo_synthetic-shiprs'
TEACHER = 'retinanet_r34_fpn_demo_synthetic-shiprs'


def test_main_demo_prints_one_line_per_stage_and_writes_table_and_pictures(tmp_path):
    work = tmp_path / 'work'
    env = dict(os.environ, IFKD_MM_VENV=sys.prefix, IFKD_DEMO_EPOCHS='1',
               IFKD_DEMO_DATA_ROOT=str(tmp_path / 'data'),
               IFKD_DEMO_DATA_ARGS='--num-train 4 --num-val 2 --img-size 128')
    done = subprocess.run(['bash', 'tools/run_demo.sh', '--seed', '3', '--work-dir', str(work)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert len(lines) < 40, done.stdout
    steps = [int(m.group(1)) for line in lines for m in [re.match(r'\[(\d+)/10\] ', line)] if m]
    assert steps == list(range(1, 11)), done.stdout
    assert not any('FAILED' in line for line in lines)
    assert 'seed 3' in lines[0]
    assert re.search(r'\[7/10\] test the teacher: done in \S+', done.stdout)

    table = json.loads((work / 'results.json').read_text())
    assert [row['model'] for row in table['rows']] == [
        'teacher RetinaNet R34', 'student R18 alone', 'student R18 distilled with IFKD']
    for row, test_dir in zip(table['rows'], ('test_teacher', 'test_student', 'test_ifkd_student')):
        # after one epoch a model may have no detection above its score_thr: no metrics, n/a
        metrics = json.loads((work / test_dir / 'metrics.json').read_text())
        assert row['mAP'] == metrics.get('coco/bbox_mAP') and row['AP50'] == metrics.get(
            'coco/bbox_mAP_50')
    markdown = (work / 'results.md').read_text()
    assert markdown in done.stdout and markdown.count('\n| ') == 4  # header and three rows

    comparison = cv2.imread(str(work / 'comparison.png'))
    assert comparison is not None and comparison.shape[1] == 3 * (512 + 8)
    assert cv2.imread(str(work / 'loss_curves.png')) is not None
    logs = sorted(path.name for path in (work / 'logs').iterdir())
    assert len(logs) == 10 and 'train_ifkd_retinanet_r34-r18_fpn_demo_synthetic-shiprs.log' in logs
    assert str(work / 'results.md') in done.stdout
    assert_distiller_checkpoint_tests_as_its_exported_student(work, tmp_path / 'data')


def assert_distiller_checkpoint_tests_as_its_exported_student(work, data_root):
    """The distillation logged both IFKD terms, saved no teacher weights but its adapters, and
    tools/test.py gives the distiller checkpoint and the exported plain student the same COCO
    metrics (score_thr 0: a one-epoch student has no confident detections yet)."""
    distill_dir = work / DISTILLED
    logged = [row for row in scalars(str(distill_dir)) if 'loss' in row]
    assert logged and all(row['loss_ifkd_feat'] > 0 and row['loss_ifkd_head'] > 0
                          for row in logged)
    distilled = (distill_dir / 'last_checkpoint').read_text().strip()
    state = torch.load(distilled)['state_dict']
    assert not any(key.startswith('teacher') for key in state)
    assert any(key.startswith('distill_losses.0.adapters') for key in state)

    ship = f'{data_root}/ShipRSImageNet/'
    data = [f'test_dataloader.dataset.data_root={ship}',
            f'test_evaluator.ann_file={ship}COCO_Format/ShipRSImageNet_bbox_val_level_3.json']
    teacher = (work / TEACHER / 'last_checkpoint').read_text().strip()
    metrics = {}
    for name, config, checkpoint, options in (
            ('distiller', DISTILLED, distilled,
             [f'model.teacher.checkpoint={teacher}', 'model.student.test_cfg.score_thr=0.0']),
            ('exported', 'retinanet_r18_fpn_demo_synthetic-shiprs',
             str(distill_dir / 'student.pth'), ['model.test_cfg.score_thr=0.0'])):
        test_dir = work / f'test_all_scores_{name}'
        output = run([sys.executable, 'tools/test.py', DEMO.format(config), checkpoint,
                      '--work-dir', str(test_dir), '--cfg-options', *data, *options])
        assert 'coco/bbox_mAP:' in output
        metrics[name] = json.loads((test_dir / 'metrics.json').read_text())
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75'):
        assert metrics['distiller'][key] == metrics['exported'][key] >= 0
