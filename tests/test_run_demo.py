"""tools/run_demo.sh, the main command, end to end on a tiny synthetic copy (one epoch each):
teacher, student alone and IFKD-distilled student, one line per stage, the table as markdown
and JSON, the comparison picture and the loss curves."""
import json
import os
import re
import subprocess
import sys

import cv2

from .conftest import REPO


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
