"""Run one stage of a demo as one line of output: its full output goes to a log file.

    python tools/run_stage.py --label 'train teacher' --log work_dirs/demo/logs/teacher.log \
        [--step 2/7] [--result 'mAP=^coco/bbox_mAP: (\\S+)'] -- COMMAND [ARGS...]

While the command runs, a progress bar (on a terminal; nothing otherwise) follows mmengine's
``Epoch(train) [e][i/n]`` / ``Epoch(test) [i/n]`` lines in the log, against the ``max_epochs``
of the config that mmengine printed there. When it ends, one line: the step, the label, the
time and the ``--result`` values (``NAME=REGEX``, the first group of the last line of the log
that matches; repeatable). A failing command prints the last ``--tail`` lines of its log and the
log's path, and its exit status is returned.
"""
import argparse
import os
import os.path as osp
import re
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

from tqdm import tqdm

TRAIN_PROGRESS = re.compile(r'Epoch\(train\)\s*\[(\d+)\]\[\s*(\d+)/(\d+)\]')
TEST_PROGRESS = re.compile(r'Epoch\((?:test|val)\)\s*\[\s*(\d+)/(\d+)\]')
MAX_EPOCHS = re.compile(r'max_epochs=(\d+)')


def progress(log_text: str) -> Optional[Tuple[int, int, str]]:
    """``(done, total, unit)`` of the last progress line of an mmengine log, or None.

    Training counts iterations over ``max_epochs`` epochs (``unit='it'``); a test or validation
    run, batches. Epochs count from the first logged one, so a resumed run starts where it was.
    """
    train = TRAIN_PROGRESS.findall(log_text)
    epochs = MAX_EPOCHS.findall(log_text)
    if train and epochs:
        epoch, step, per_epoch = (int(v) for v in train[-1])
        return (epoch - 1) * per_epoch + step, int(epochs[0]) * per_epoch, 'it'
    test = TEST_PROGRESS.findall(log_text)
    if test:
        step, total = (int(v) for v in test[-1])
        return step, total, 'batch'
    return None


def parse_results(specs: Sequence[str]) -> List[Tuple[str, re.Pattern]]:
    """``NAME=REGEX`` specs as ``(NAME, compiled multiline REGEX)``; the regex needs a group."""
    parsed = []
    for spec in specs:
        name, sep, pattern = spec.partition('=')
        if not sep or not name:
            raise ValueError(f'--result {spec!r}: expected NAME=REGEX')
        regex = re.compile(pattern, re.MULTILINE)
        if regex.groups < 1:
            raise ValueError(f'--result {spec!r}: the regex needs a group around the value')
        parsed.append((name, regex))
    return parsed


def extract(log_text: str, results: Sequence[Tuple[str, re.Pattern]]) -> Dict[str, str]:
    """The first group of each regex's last match in the log (names without a match left out)."""
    found = {}
    for name, regex in results:
        matches = regex.findall(log_text)
        if matches:
            last = matches[-1]
            found[name] = last[0] if isinstance(last, tuple) else last
    return found


def short(value: str) -> str:
    """A number to 4 significant digits (``0.3766053318977356`` -> ``0.3766``); text unchanged."""
    try:
        return f'{float(value):.4g}'
    except ValueError:
        return value


def duration(seconds: float) -> str:
    """``1m05s`` / ``12s``."""
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f'{minutes}m{seconds:02d}s' if minutes else f'{seconds}s'


def read(path: str) -> str:
    with open(path, errors='replace') as f:
        return f.read()


def run(command: Sequence[str], log: str, label: str, step: str = '',
        results: Sequence[Tuple[str, re.Pattern]] = (), tail: int = 30,
        poll: float = 1.0) -> int:
    """Run ``command`` with its output in ``log``; print one line (or the log's tail on failure)."""
    os.makedirs(osp.dirname(osp.abspath(log)), exist_ok=True)
    prefix = f'[{step}] ' if step else ''
    start = time.time()
    with open(log, 'w') as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        bar = tqdm(total=None, desc=f'{prefix}{label}', leave=False, dynamic_ncols=True,
                   disable=None, file=sys.stderr)
        while process.poll() is None:
            time.sleep(poll)
            state = progress(read(log))
            if state and not bar.disable:
                done, total, unit = state
                bar.total, bar.unit = total, unit
                bar.n = min(done, total)
                bar.refresh()
        bar.close()
    took = duration(time.time() - start)
    if process.returncode != 0:
        lines = read(log).splitlines()[-tail:]
        print(f'{prefix}{label}: FAILED (exit {process.returncode}) after {took}; '
              f'last {len(lines)} lines of {log}:', flush=True)
        for line in lines:
            print(f'    {line}')
        print(f'full log: {log}', flush=True)
        return process.returncode
    values = extract(read(log), results)
    shown = ', '.join(f'{name} {short(value)}' for name, value in values.items())
    print(f'{prefix}{label}: done in {took}' + (f' ({shown})' if shown else ''), flush=True)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if '--' not in argv:
        raise SystemExit('usage: run_stage.py --label L --log FILE [options] -- COMMAND ...')
    split = argv.index('--')
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--label', required=True, help='what the stage does, for its line')
    parser.add_argument('--log', required=True, help='file that receives the full output')
    parser.add_argument('--step', default='', help="e.g. '2/7', printed before the label")
    parser.add_argument('--result', action='append', default=[], metavar='NAME=REGEX',
                        help='value to print: first group of the last matching log line')
    parser.add_argument('--tail', type=int, default=30,
                        help='log lines printed when the command fails (default 30)')
    args = parser.parse_args(argv[:split])
    command = argv[split + 1:]
    if not command:
        raise SystemExit('run_stage.py: no command after --')
    return run(command, args.log, args.label, args.step, parse_results(args.result), args.tail)


if __name__ == '__main__':
    sys.exit(main())
