"""tools/benchmark/distill_step.py: tiny runs (a neck loss, a head loss, IFKD with cached EDE;
KD-RNet and DKED on rotated RetinaNet)."""
import json
import math
import os.path as osp
import re

import pytest

from .conftest import REPO

METHODS = ['fitnet', 'fkd', 'insdist', 'frs', 'arsd', 'ifkd-ede-cached']
DEMO = osp.join(REPO, 'configs/demo/retinanet_{}_fpn_demo_synthetic-shiprs.py')
ROTATED_DEMO = osp.join(REPO, 'configs/kd-rnet/demo',
                        'rotated-retinanet_{}_fpn_demo_synthetic-dota.py')


def run_benchmark(args: list) -> None:
    """``main(args)`` with one torch thread (steadier on a shared machine)."""
    import torch

    from tools.benchmark.distill_step import main

    threads = torch.get_num_threads()
    try:
        main([*args, '--threads', '1'])
    finally:
        torch.set_num_threads(threads)


def table_rows(printed: str) -> dict:
    """run -> its cells, from the printed markdown table."""
    return {cells[0]: cells[1:] for cells in (
        [cell.strip() for cell in line.strip('|').split('|')]
        for line in printed.splitlines() if re.match(r'^\| [\w-]+ \|', line))}


def assert_positive_rows(rows: dict, methods: list) -> None:
    """Every time and memory is a positive number; methods have an overhead and a loss-module
    time below their step time, the others neither."""
    assert set(rows) == {'run', 'student', 'teacher', *methods}
    for run in ['student', 'teacher', *methods]:
        median, fastest, losses, memory, overhead = rows[run]
        numbers = [float(median), float(fastest), float(memory)]
        if run in methods:
            numbers += [float(overhead.rstrip('x')), float(losses)]
            assert float(losses) < float(median), (run, rows[run])
        else:
            assert overhead == losses == '-'
        assert all(math.isfinite(n) and n > 0 for n in numbers), (run, rows[run])


def test_distill_step_benchmark_prints_a_row_per_method(synthetic_root, tmp_path, capsys):
    out = tmp_path / 'results.json'
    run_benchmark(['--student', DEMO.format('r18'), '--teacher', DEMO.format('r50'),
                   '--data-root', osp.join(synthetic_root, 'ShipRSImageNet'), '--methods',
                   *METHODS, '--img-size', '64', '--batch-size', '2', '--steps', '1',
                   '--warmup', '1', '--out', str(out)])
    printed = capsys.readouterr().out
    assert_positive_rows(table_rows(printed), METHODS)
    assert 'MobileSAM weights: random' in printed
    saved = json.loads(out.read_text())
    assert [r['run'] for r in saved['results']] == ['student', 'teacher', *METHODS]
    for result in saved['results'][2:]:
        assert 0 < result['losses_median_s'] < result['median_s']
        assert len(result['losses_times_s']) == 1


def test_rotated_suite_times_kd_rnet_and_dked(synthetic_root, tmp_path, capsys):
    from tools.data.split_dota import split_folder

    split_folder(osp.join(synthetic_root, 'DOTA', 'train'), str(tmp_path / 'trainval'), size=96,
                 overlap=32)
    run_benchmark(['--suite', 'rotated', '--student', ROTATED_DEMO.format('r18'), '--teacher',
                   ROTATED_DEMO.format('r50'), '--data-root', str(tmp_path), '--img-size', '64',
                   '--batch-size', '2', '--steps', '1', '--warmup', '1'])
    printed = capsys.readouterr().out
    assert_positive_rows(table_rows(printed), ['kd-rnet', 'dked'])
    assert f'the first 2 training images of {tmp_path}' in printed


def test_every_method_step_runs_between_a_student_step_and_a_teacher_forward(capsys):
    from tools.benchmark.distill_step import interleaved_steps, round_order, run_times

    order = []
    steps = {name: (lambda name=name: order.append(name))
             for name in ['student', 'teacher', 'a', 'b', 'c']}
    timed = interleaved_steps(steps, ['a', 'b', 'c'], rounds=4, device='cpu')
    assert order == ['student', 'a', 'teacher', 'b', 'student', 'c', 'teacher',
                     'teacher', 'b', 'student', 'c', 'teacher', 'a', 'student',
                     'student', 'c', 'teacher', 'a', 'student', 'b', 'teacher',
                     'teacher', 'a', 'student', 'b', 'teacher', 'c', 'student']
    assert [run for steps in timed for run, _ in steps] == order
    assert round_order(['a', 'b', 'c'], 5)[1::2] == ['c', 'a', 'b']
    assert {name: len(run_times(timed, name)) for name in steps} == {
        'student': 8, 'teacher': 8, 'a': 4, 'b': 4, 'c': 4}
    assert capsys.readouterr().out.count('round ') == 4


def test_overheads_divide_each_method_step_by_its_two_neighbours():
    from tools.benchmark.distill_step import neighbour_overheads, run_times

    timed = [[('student', 2.0), ('m', 3.3), ('teacher', 1.0), ('n', 2.0), ('student', 4.0)],
             [('teacher', 2.0), ('n', 5.0), ('student', 3.0), ('m', 6.0), ('teacher', 1.0)]]
    assert neighbour_overheads(timed, 'm') == pytest.approx([1.1, 1.5])
    assert neighbour_overheads(timed, 'n') == pytest.approx([0.4, 1.0])
    assert run_times(timed, 'student') == [2.0, 4.0, 3.0]


FAULTS_PROBE = """
import resource, sys, torch
sys.path.insert(0, {repo!r})
from tools.benchmark.distill_step import keep_freed_memory
if {keep}:
    keep_freed_memory()
def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(16 * 2**20)  # 64 MiB, freed at once
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults()
print(min(faults() for _ in range(3)))
"""


def test_keep_freed_memory_stops_steps_faulting_their_tensors_in_anew():
    """glibc unmaps a freed 64 MiB tensor (16,384 pages) and faults it in again the next time;
    with freed memory kept, the next one reuses the pages. Each case in its own process."""
    import subprocess
    import sys

    def probe(keep: bool) -> int:
        code = FAULTS_PROBE.format(repo=REPO, keep=keep)
        return int(subprocess.run([sys.executable, '-c', code], check=True, capture_output=True,
                                  text=True).stdout.split()[-1])

    default, kept = probe(False), probe(True)
    assert default > 16_000, default
    assert kept < 100, kept
