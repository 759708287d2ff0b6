"""tools/benchmark/distill_step.py: a tiny run (a neck loss, a head loss, IFKD with cached EDE)."""
import json
import math
import os.path as osp
import re

from .conftest import REPO

METHODS = ['fitnet', 'frs', 'ifkd-ede-cached']
DEMO = osp.join(REPO, 'configs/demo/retinanet_{}_fpn_demo_synthetic-shiprs.py')


def test_distill_step_benchmark_prints_a_row_per_method(synthetic_root, tmp_path, capsys):
    import torch

    from tools.benchmark.distill_step import main

    out = tmp_path / 'results.json'
    threads = torch.get_num_threads()
    try:  # one thread: steadier on a shared machine
        main(['--student', DEMO.format('r18'), '--teacher', DEMO.format('r50'),
              '--data-root', osp.join(synthetic_root, 'ShipRSImageNet'), '--methods', *METHODS,
              '--img-size', '64', '--batch-size', '1', '--steps', '1', '--warmup', '1',
              '--threads', '1', '--out', str(out)])
    finally:
        torch.set_num_threads(threads)
    printed = capsys.readouterr().out
    rows = {cells[0]: cells[1:] for cells in (
        [cell.strip() for cell in line.strip('|').split('|')]
        for line in printed.splitlines() if re.match(r'^\| [\w-]+ \|', line))}
    assert set(rows) == {'run', 'student', 'teacher', *METHODS}
    for run in ['student', 'teacher', *METHODS]:
        median, fastest, memory, overhead = rows[run]
        numbers = [float(median), float(fastest), float(memory)]
        if run in METHODS:
            numbers.append(float(overhead.rstrip('x')))
        else:
            assert overhead == '-'
        assert all(math.isfinite(n) and n > 0 for n in numbers), (run, rows[run])
    assert 'MobileSAM weights: random' in printed
    saved = json.loads(out.read_text())
    assert [r['run'] for r in saved['results']] == ['student', 'teacher', *METHODS]
