"""One table from the ``metrics.json`` files that ``tools/test.py`` writes: printed as markdown
and written as markdown and JSON.

    python tools/results_table.py --title 'Demo on synthetic ShipRSImageNet' \
        --row teacher work_dirs/demo/seed_0/test_teacher/metrics.json [--row LABEL FILE ...] \
        --metric mAP=coco/bbox_mAP [--metric AP50=coco/bbox_mAP_50 ...] \
        [--md results.md] [--json results.json] [--digits 3]

A row whose file lacks a metric shows ``n/a`` (``null`` in the JSON); a missing file is an error
that names it.
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple


def read_metrics(path: str) -> Dict[str, float]:
    """The metrics of one ``tools/test.py`` run."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'no metrics file {path}: did its tools/test.py stage run?')
    with open(path) as f:
        return json.load(f)


def parse_metric(spec: str) -> Tuple[str, str]:
    """``COLUMN=KEY`` (or just ``KEY``, used as the column name too)."""
    column, sep, key = spec.partition('=')
    return (column, key) if sep else (spec, spec)


def build_rows(rows: Sequence[Tuple[str, str]],
               metrics: Sequence[Tuple[str, str]]) -> List[Dict[str, Optional[float]]]:
    """``[{'model': label, column: value or None, ...}]`` from ``(label, metrics.json)`` pairs."""
    table = []
    for label, path in rows:
        values = read_metrics(path)
        table.append({'model': label, **{column: values.get(key) for column, key in metrics}})
    return table


def markdown(title: str, table: Sequence[Dict[str, Optional[float]]],
             columns: Sequence[str], digits: int = 3) -> str:
    """A markdown table under ``title``; numbers to ``digits`` decimals, missing as ``n/a``."""
    def cell(value):
        return 'n/a' if value is None else f'{value:.{digits}f}'

    lines = [title, '', '| model | ' + ' | '.join(columns) + ' |',
             '|---|' + '---:|' * len(columns)]
    for row in table:
        lines.append(f"| {row['model']} | " + ' | '.join(cell(row[c]) for c in columns) + ' |')
    return '\n'.join(lines) + '\n'


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--title', default='Results')
    parser.add_argument('--row', nargs=2, action='append', required=True,
                        metavar=('LABEL', 'METRICS_JSON'))
    parser.add_argument('--metric', action='append', required=True, metavar='COLUMN=KEY')
    parser.add_argument('--md', help='also write the markdown table here')
    parser.add_argument('--json', help='also write the rows as JSON here')
    parser.add_argument('--digits', type=int, default=3)
    args = parser.parse_args(argv)
    metrics = [parse_metric(spec) for spec in args.metric]
    table = build_rows([tuple(row) for row in args.row], metrics)
    text = markdown(args.title, table, [column for column, _ in metrics], args.digits)
    print(text, end='')
    for path, content in ((args.md, text),
                          (args.json, json.dumps(dict(title=args.title, rows=table), indent=2))):
        if path:
            os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
            with open(path, 'w') as f:
                f.write(content)
    return 0


if __name__ == '__main__':
    sys.exit(main())
