"""Plot the loss curves of a training run (total, detection and distillation terms) as a PNG.

    python tools/plot_losses.py WORK_DIR --out losses.png [--keys loss loss_cls ...]

Reads every ``WORK_DIR/<timestamp>/vis_data/scalars.json`` (mmengine's JSON lines, one per logged
iteration) and merges them by ``step``: the runs are taken in timestamp order and a later run's
value replaces an earlier one at the same step (a resumed run logs again the iterations after its
checkpoint). Drawn against the iteration: the total ``loss`` (black), the detection terms of the
student (:data:`DETECTION_TERMS`, solid) and every other ``loss_*`` term, i.e. the distillation
terms (e.g. IFKD's ``loss_ifkd_feat`` and ``loss_ifkd_head``, dashed). The y axis is logarithmic
when the plotted values span more than two decades.
"""
import argparse
import glob
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

Series = Dict[str, Tuple[np.ndarray, np.ndarray]]

TOTAL = 'loss'
# Loss names of mmdet / mmrotate detectors themselves (dense heads, RPN, RoI heads).
DETECTION_TERMS = frozenset({
    'loss_cls', 'loss_bbox', 'loss_iou', 'loss_centerness', 'loss_obj', 'loss_dfl',
    'loss_angle', 'loss_rpn_cls', 'loss_rpn_bbox', 'loss_mask'})
LOG_SCALE_SPAN = 100.0  # two decades


def scalar_files(work_dir: str) -> List[str]:
    """The ``*/vis_data/scalars.json`` of a work dir, oldest run first (by timestamp name)."""
    paths = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    return sorted(paths, key=lambda path: osp.basename(osp.dirname(osp.dirname(path))))


def read_scalars(path: str) -> List[dict]:
    """The rows of one mmengine ``scalars.json`` (JSON lines; blank lines skipped)."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def merge_scalars(paths: Sequence[str], keys: Optional[Sequence[str]] = None) -> Series:
    """``name -> (steps, values)`` over the rows of ``paths`` in order, sorted by step.

    A later file's value replaces an earlier one at the same step. ``keys`` defaults to every
    name starting with ``loss``.
    """
    by_step: Dict[str, Dict[int, float]] = {}
    for path in paths:
        for row in read_scalars(path):
            for name, value in row.items():
                wanted = name in keys if keys is not None else name.startswith(TOTAL)
                if wanted and 'step' in row:
                    by_step.setdefault(name, {})[int(row['step'])] = float(value)
    series = {}
    for name, values in by_step.items():
        steps = np.array(sorted(values), dtype=np.int64)
        series[name] = (steps, np.array([values[step] for step in steps], dtype=np.float64))
    return series


def loss_series(work_dir: str, keys: Optional[Sequence[str]] = None) -> Series:
    """The merged series of all runs of ``work_dir`` (see :func:`merge_scalars`)."""
    paths = scalar_files(work_dir)
    if not paths:
        raise FileNotFoundError(f'no */vis_data/scalars.json under {work_dir}')
    series = merge_scalars(paths, keys)
    missing = [key for key in keys or () if key not in series]
    if missing:
        raise KeyError(f'{missing} are not logged under {work_dir}')
    return series


def term_group(name: str) -> str:
    """``'total'``, ``'detection'`` or ``'distillation'``."""
    if name == TOTAL:
        return 'total'
    return 'detection' if name in DETECTION_TERMS else 'distillation'


def needs_log_scale(series: Series) -> bool:
    """Whether the positive values of all series span more than two decades."""
    values = np.concatenate([values for _, values in series.values()])
    positive = values[values > 0]
    return positive.size > 0 and positive.max() / positive.min() > LOG_SCALE_SPAN


def plot_series(series: Series, out: str, title: str) -> str:
    """Draw the series (total, then detection, then distillation terms) into ``out``."""
    order = {'total': 0, 'detection': 1, 'distillation': 2}
    names = sorted(series, key=lambda name: (order[term_group(name)], name))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name in names:
        group = term_group(name)
        steps, values = series[name]
        style = dict(total=dict(color='black', linewidth=2), detection=dict(linestyle='-'),
                     distillation=dict(linestyle='--'))[group]
        ax.plot(steps, values, label=f'{group}: {name}', **style)
    if needs_log_scale(series):
        ax.set_yscale('log')
    ax.set_xlabel('iteration')
    ax.set_ylabel('loss')
    ax.set_title(title)
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('work_dir', help='work dir of a training run (all its runs are joined)')
    parser.add_argument('--out', required=True, help='output PNG')
    parser.add_argument('--keys', nargs='+', help='scalars to plot (default: every loss*)')
    args = parser.parse_args(argv)
    if not args.out.lower().endswith('.png'):
        raise ValueError(f'--out must be a .png file, got {args.out}')
    series = loss_series(args.work_dir, args.keys)
    plot_series(series, args.out, osp.basename(osp.normpath(args.work_dir)))
    last = ', '.join(f'{name} {values[-1]:.4g}' for name, (_, values) in sorted(series.items()))
    print(f'wrote {args.out}: {len(series)} curves to iteration '
          f'{max(steps[-1] for steps, _ in series.values())} (last: {last})')


if __name__ == '__main__':
    main()
