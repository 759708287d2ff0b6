"""Eq. 14 weight search of the ERKT-Net teacher ensemble (section 4.3, Table 6).

    python tools/erkt/search_weights.py ENSEMBLE_CONFIG [--vary B3] [--split val|test]
                                        [--start 0.1 --stop 0.9 --step 0.1] [--out table.json]

Each member runs once over the split; then for ``W_vary`` from ``start`` to ``stop`` the others
get ``(1 - W_vary) / (K - 1)`` (eq. 14: ``W_B0 = W_R50 = (1 - W_B3) * 0.5``) and the overall
accuracy (eq. 13) of the weighted soft vote is printed as a table. ``--split val`` uses the
config's ``val_dataloader`` (the ERKT-Net dataset configs have no separate validation split and
validate on the test split; point ``val_dataloader.dataset`` elsewhere with ``--cfg-options``).
"""
import argparse
import json
import sys
from typing import Dict, List

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import ifkd_mm  # noqa: F401  registers the plugin's modules
from ifkd_mm.classification import build_cls_model, combine, eq14_weights


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='eq. 14 weight search of a TeacherEnsemble')
    parser.add_argument('config', help='a config whose model is a TeacherEnsemble')
    parser.add_argument('--vary', default='B3', help='name of the member whose weight varies')
    parser.add_argument('--split', choices=['val', 'test'], default='val')
    parser.add_argument('--start', type=float, default=0.1)
    parser.add_argument('--stop', type=float, default=0.9)
    parser.add_argument('--step', type=float, default=0.1)
    parser.add_argument('--out', help='also write the table to this json file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


@torch.no_grad()
def collect(ensemble, dataloader) -> Dict[str, torch.Tensor]:
    """``probs`` ``(K, N, C)`` of the members and ``labels`` ``(N,)`` over a dataloader."""
    probs, labels = [], []
    for data in dataloader:
        data = ensemble.data_preprocessor(data, False)
        probs.append(ensemble.member_probs(data['inputs']))
        labels.append(torch.cat([s.gt_label for s in data['data_samples']]))
    return dict(probs=torch.cat(probs, dim=1), labels=torch.cat(labels))


def search(probs: torch.Tensor, labels: torch.Tensor, names: List[str], vary: str,
           grid: np.ndarray) -> List[dict]:
    """One row per ``W_vary`` of ``grid``: the eq. 14 weights of every member and the OA (%)."""
    if vary not in names:
        raise KeyError(f'no member named {vary!r}; members: {names}')
    order = [names.index(vary)] + [i for i in range(len(names)) if names[i] != vary]
    rows = []
    for w in grid:
        weights = [0.0] * len(names)
        for index, value in zip(order, eq14_weights(float(w), len(names))):
            weights[index] = value
        pred = combine(probs, weights).argmax(dim=1)
        accuracy = 100.0 * (pred == labels).double().mean().item()
        rows.append(dict(weights=dict(zip(names, weights)), accuracy=accuracy))
    return rows


def format_table(rows: List[dict], names: List[str]) -> str:
    """A markdown table: one weight column per member, then the OA."""
    lines = ['| ' + ' | '.join(f'W_{n}' for n in names) + ' | OA (%) |',
             '|' + '---|' * (len(names) + 1)]
    best = max(row['accuracy'] for row in rows)
    for row in rows:
        mark = ' *' if row['accuracy'] == best else ''
        lines.append('| ' + ' | '.join(f"{row['weights'][n]:.2f}" for n in names) +
                     f" | {row['accuracy']:.2f}{mark} |")
    return '\n'.join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    if cfg.model.type != 'TeacherEnsemble':
        raise ValueError(f'{args.config}: model.type is {cfg.model.type}, not TeacherEnsemble')
    model_cfg = cfg.model.copy()
    model_cfg.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    ensemble = build_cls_model(model_cfg)
    loader_cfg = cfg.val_dataloader if args.split == 'val' else cfg.test_dataloader
    dataloader = Runner.build_dataloader(loader_cfg)
    outputs = collect(ensemble, dataloader)
    grid = np.round(np.arange(args.start, args.stop + args.step / 2, args.step), 6)
    rows = search(outputs['probs'], outputs['labels'], ensemble.names, args.vary, grid)
    print(f'eq. 14 search of W_{args.vary} on the {args.split} split '
          f'({len(outputs["labels"])} images)')
    print(format_table(rows, ensemble.names))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
