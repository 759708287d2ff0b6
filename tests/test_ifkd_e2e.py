"""End to end through the tools: train a tiny teacher, distil a student with IFKD, export it,
and evaluate both the distilled run and the exported plain student with tools/test.py."""
import json
import os.path as osp
import sys

import torch

from .conftest import REPO, run, scalars, tiny_config

IFKD_DEMO = osp.join(REPO, 'configs/demo/ifkd_retinanet_r34-r18_fpn_demo_synthetic-shiprs.py')


def test_teacher_ifkd_export_test(synthetic_root, tmp_path):
    teacher_config = tiny_config(tmp_path, synthetic_root, max_epochs=2, checkpoint_interval=2,
                                 name='teacher')
    teacher_dir = str(tmp_path / 'teacher')
    run([sys.executable, 'tools/train.py', teacher_config, '--work-dir', teacher_dir])
    teacher_checkpoint = osp.join(teacher_dir, 'epoch_2.pth')

    distill_config = tiny_config(tmp_path, synthetic_root, max_epochs=2, checkpoint_interval=2,
                                 base=IFKD_DEMO, name='ifkd')
    distill_dir = str(tmp_path / 'ifkd')
    run([sys.executable, 'tools/train.py', distill_config, '--work-dir', distill_dir,
         '--cfg-options', f'model.teacher.config={teacher_config}',
         f'model.teacher.checkpoint={teacher_checkpoint}'])
    logged = [row for row in scalars(distill_dir) if 'loss' in row]
    assert all(row['loss_ifkd_feat'] > 0 and row['loss_ifkd_head'] > 0 for row in logged)
    distilled = osp.join(distill_dir, 'epoch_2.pth')
    state = torch.load(distilled)['state_dict']
    assert not any(key.startswith('teacher') for key in state)
    assert any(key.startswith('distill_losses.0.adapters') for key in state)

    exported = str(tmp_path / 'student.pth')
    run([sys.executable, 'tools/export_student.py', distilled, exported])
    student_config = tiny_config(tmp_path, synthetic_root, max_epochs=2, checkpoint_interval=2,
                                 name='student')
    metrics = {}  # score_thr 0: a 2-epoch student has no confident detections yet
    for name, config, checkpoint, extra in (
            ('distilled', distill_config, distilled,
             ['--cfg-options', f'model.teacher.config={teacher_config}',
              f'model.teacher.checkpoint={teacher_checkpoint}',
              'model.student.test_cfg.score_thr=0.0']),
            ('exported', student_config, exported,
             ['--cfg-options', 'model.test_cfg.score_thr=0.0'])):
        work_dir = str(tmp_path / f'test_{name}')
        output = run([sys.executable, 'tools/test.py', config, checkpoint, '--work-dir', work_dir,
                      *extra])
        assert 'coco/bbox_mAP:' in output
        metrics[name] = json.load(open(osp.join(work_dir, 'metrics.json')))
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75'):
        assert metrics['distilled'][key] == metrics['exported'][key] >= 0
