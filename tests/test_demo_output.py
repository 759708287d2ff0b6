"""The demos' output: one line per stage (tools/run_stage.py) and the results table
(tools/results_table.py)."""
import json
import os.path as osp
import subprocess
import sys

import pytest

from tools import results_table, run_stage

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

TRAIN_LOG = """\
10:00:00 - mmengine - INFO - Config:
train_cfg = dict(max_epochs=12, type='EpochBasedTrainLoop', val_interval=12)
10:00:05 - mmengine - INFO - Epoch(train)  [1][ 5/12]  lr: 1e-3  loss: 2.5000  loss_cls: 1.0
10:00:09 - mmengine - INFO - Epoch(train)  [3][10/12]  lr: 1e-3  loss: 1.2500  loss_cls: 0.7
"""


def test_progress_counts_iterations_over_the_configured_epochs():
    assert run_stage.progress(TRAIN_LOG) == (2 * 12 + 10, 12 * 12, 'it')
    test_log = 'Epoch(test) [3/16]    eta: 0:00:05\nEpoch(test) [ 7/16]  eta: 0:00:03\n'
    assert run_stage.progress(test_log) == (7, 16, 'batch')
    assert run_stage.progress('building the model\n') is None


def test_results_are_the_last_match_of_each_regex():
    results = run_stage.parse_results(['loss=loss: ([0-9.]+) +loss_cls',
                                       'mAP=^coco/bbox_mAP: (\\S+)'])
    log = TRAIN_LOG + 'coco/bbox_mAP: 0.25\ncoco/bbox_mAP_50: 0.5\n'
    assert run_stage.extract(log, results) == {'loss': '1.2500', 'mAP': '0.25'}
    assert run_stage.extract('nothing', results) == {}
    with pytest.raises(ValueError, match='needs a group'):
        run_stage.parse_results(['loss=loss: [0-9.]+'])
    with pytest.raises(ValueError, match='NAME=REGEX'):
        run_stage.parse_results(['loss'])


def test_a_stage_prints_one_line_and_keeps_the_output_in_its_log(tmp_path):
    log = tmp_path / 'logs' / 'stage.log'
    script = 'print("line 1"); print("coco/bbox_mAP: 0.4200613"); print("line 3")'
    done = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools/run_stage.py'), '--step', '3/9', '--label',
         'test it', '--log', str(log), '--result', 'mAP=^coco/bbox_mAP: (\\S+)', '--',
         sys.executable, '-c', script], capture_output=True, text=True, check=True)
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith('[3/9] test it: done in ') and lines[0].endswith('(mAP 0.4201)')
    assert log.read_text() == 'line 1\ncoco/bbox_mAP: 0.4200613\nline 3\n'
    assert done.stderr == ''  # no progress bar when not on a terminal


def test_a_failing_stage_prints_its_log_tail_and_path_and_returns_its_status(tmp_path):
    log = tmp_path / 'fail.log'
    script = ('import sys\nfor i in range(50): print(f"step {i}")\n'
              'sys.exit("boom: the checkpoint is missing")')
    done = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools/run_stage.py'), '--label', 'train', '--log',
         str(log), '--tail', '5', '--', sys.executable, '-c', script],
        capture_output=True, text=True)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0].startswith('train: FAILED (exit 1) after ') and str(log) in lines[0]
    assert [line.strip() for line in lines[1:6]] == [
        'step 46', 'step 47', 'step 48', 'step 49', 'boom: the checkpoint is missing']
    assert lines[6] == f'full log: {log}'
    assert len(lines) == 7


def write_metrics(path, **values):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({f'coco/{k}': v for k, v in values.items()}))
    return str(path)


def test_results_table_as_markdown_and_json(tmp_path, capsys):
    teacher = write_metrics(tmp_path / 't' / 'metrics.json', bbox_mAP=0.31234, bbox_mAP_50=0.5)
    student = write_metrics(tmp_path / 's' / 'metrics.json', bbox_mAP=0.2)
    md, js = tmp_path / 'out' / 'results.md', tmp_path / 'out' / 'results.json'
    results_table.main(['--title', 'Demo', '--row', 'teacher', teacher, '--row', 'student',
                        student, '--metric', 'mAP=coco/bbox_mAP', '--metric',
                        'AP50=coco/bbox_mAP_50', '--md', str(md), '--json', str(js)])
    expected = ('Demo\n\n| model | mAP | AP50 |\n|---|---:|---:|\n'
                '| teacher | 0.312 | 0.500 |\n| student | 0.200 | n/a |\n')
    assert capsys.readouterr().out == expected
    assert md.read_text() == expected
    assert json.loads(js.read_text()) == dict(title='Demo', rows=[
        dict(model='teacher', mAP=0.31234, AP50=0.5), dict(model='student', mAP=0.2, AP50=None)])
    with pytest.raises(FileNotFoundError, match='missing/metrics.json'):
        results_table.main(['--row', 'x', str(tmp_path / 'missing' / 'metrics.json'),
                            '--metric', 'coco/bbox_mAP'])
