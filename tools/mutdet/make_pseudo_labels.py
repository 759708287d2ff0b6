"""MutDet pseudo-labels for a folder of images (MutDet section 3.1), resumable and sharded.

    python tools/mutdet/make_pseudo_labels.py CONFIG --images DIR --out DIR \
        [--stage all|extract|fit|assign] [--shard I/N] [--sam-checkpoint PATH] [--device cpu]
        [--seed 0] [--cfg-options KEY=VALUE ...]

CONFIG (``configs/mutdet/pseudo-labels_*.py``) holds ``mask_generator``, ``embedder``,
``box_filter`` and ``clustering``. The stages (see ``ifkd_mm.pretraining.mutdet.pseudo_labels``):
``extract`` writes OUT/raw/<image>.npz, ``fit`` OUT/pseudo_classes.npz, ``assign``
OUT/labels/<image>.npz; ``all`` runs the three (with one shard). Run it again after an
interruption: finished images are skipped. Several shards: run ``--stage extract --shard i/N``
for i = 0..N-1 (side by side, any machines sharing OUT), then ``--stage fit`` once, then
``--stage assign --shard i/N``. A summary (images, boxes per image, empty images, dropped masks)
is printed and written to OUT/summary.json.
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402

from ifkd_mm.pretraining.mutdet import pseudo_labels  # noqa: E402

STAGES = ('all', 'extract', 'fit', 'assign')


def parse_shard(text: str) -> tuple:
    try:
        shard, num_shards = (int(v) for v in text.split('/'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'--shard takes I/N (e.g. 0/4), got {text!r}')
    if not 0 <= shard < num_shards:
        raise argparse.ArgumentTypeError(f'--shard I/N needs 0 <= I < N, got {text!r}')
    return shard, num_shards


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='pseudo-label config (configs/mutdet/pseudo-labels_*.py)')
    parser.add_argument('--images', required=True, help='folder of images')
    parser.add_argument('--out', required=True, help='output folder (shared by all shards)')
    parser.add_argument('--stage', default='all', choices=STAGES)
    parser.add_argument('--shard', type=parse_shard, default=(0, 1), metavar='I/N')
    parser.add_argument('--sam-checkpoint', help="overrides the config's mask_generator.checkpoint")
    parser.add_argument('--device', help="e.g. cuda, cuda:1 (default: the config's, cpu)")
    parser.add_argument('--seed', type=int, default=0,
                        help='seeds random weights (no checkpoint) and the k-means')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config fields, e.g. clustering.num_clusters=64')
    args = parser.parse_args(argv)
    if args.stage == 'all' and args.shard[1] > 1:
        parser.error('--stage all runs one shard; with --shard I/N run extract, fit and assign '
                     'separately')
    return args


def build_parts(cfg: Config, args: argparse.Namespace) -> tuple:
    """The mask generator and the embedder; ``--device`` replaces the ``device`` field of each
    part config that has one; random weights (no checkpoint) are seeded."""
    parts = dict(cfg.mask_generator), dict(cfg.embedder)
    if args.sam_checkpoint:
        parts[0]['checkpoint'] = args.sam_checkpoint
    for part in parts:
        if args.device and 'device' in part:
            part['device'] = args.device
    torch.manual_seed(args.seed)
    return tuple(pseudo_labels.build_part(part) for part in parts)


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    shard, num_shards = args.shard
    os.makedirs(args.out, exist_ok=True)
    reports = []
    if args.stage in ('all', 'extract'):
        generator, embedder = build_parts(cfg, args)
        print(f'masks: {generator.settings}')
        reports.append(pseudo_labels.extract(args.images, args.out, generator, embedder,
                                             shard=shard, num_shards=num_shards,
                                             **cfg.box_filter))
    if args.stage in ('all', 'fit', 'assign'):
        clustering = dict(cfg.clustering)
        clustering.setdefault('seed', args.seed)
        classes = pseudo_labels.fit(args.images, args.out, **clustering)
        if args.stage != 'fit':
            reports.append(pseudo_labels.assign(args.images, args.out, classes, shard=shard,
                                                num_shards=num_shards))
    for report in reports:
        print(report)
    summary = pseudo_labels.summarize(args.images, args.out)
    with open(osp.join(args.out, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    print('summary:', json.dumps(summary))
    return summary


if __name__ == '__main__':
    main()
