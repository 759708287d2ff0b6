"""Turn a MutDet pre-training checkpoint into one that the fine-tuning ARS-DETR loads.

    python tools/mutdet/convert_pretrained.py PRETRAIN_CKPT OUT_CKPT \
        [--keep-pseudo-class-heads] [--drop PREFIX ...] [--finetune-config CONFIG]

Drops the pre-training-only modules (``MutDet.PRETRAINING_ONLY``: the mutual enhancement module
and the embedding head; ``--drop`` names other key prefixes instead) and, unless
``--keep-pseudo-class-heads``, the classifiers over the pseudo classes and their denoising label
embedding (``MutDet.PSEUDO_CLASS_KEYS``); everything else is carried over unchanged. Prints the
number of keys dropped per prefix and writes ``{'meta': {...}, 'state_dict': ...}``, which a
fine-tuning config names in ``load_from``. With ``--finetune-config`` the detector of that config is
built (without its ``Pretrained`` initialisations) and the converted weights are loaded into it:
the keys it would miss, not expect, or find with another shape are printed.
"""
import argparse
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import ifkd_mm  # noqa: E402,F401 (registers the modules; mmengine checkpoints under weights_only)
from ifkd_mm.models.mutdet.convert import convert_pretrained, load_report  # noqa: E402

SOURCE_META_KEYS = ('epoch', 'iter', 'mmengine_version', 'time')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint', help='MutDet pre-training checkpoint (mmengine)')
    parser.add_argument('out', help='converted checkpoint to write')
    parser.add_argument('--keep-pseudo-class-heads', action='store_true',
                        help='carry the pseudo-class classifiers and denoising label embedding '
                             'over (by default they are dropped)')
    parser.add_argument('--drop', nargs='+', metavar='PREFIX',
                        help='key prefixes to drop instead of MutDet.PRETRAINING_ONLY')
    parser.add_argument('--finetune-config',
                        help='build this fine-tuning detector and report how the weights load')
    return parser.parse_args(argv)


def drop_prefixes(args: argparse.Namespace) -> Tuple[str, ...]:
    """``--drop`` (default ``MutDet.PRETRAINING_ONLY``) and, unless ``--keep-pseudo-class-heads``,
    ``MutDet.PSEUDO_CLASS_KEYS``; the detector is imported only when one of its tuples is used."""
    prefixes = tuple(args.drop or ())
    if not args.drop or not args.keep_pseudo_class_heads:
        from ifkd_mm.models.mutdet.detector import MutDet
        if not args.drop:
            prefixes = MutDet.PRETRAINING_ONLY
        if not args.keep_pseudo_class_heads:
            prefixes += MutDet.PSEUDO_CLASS_KEYS
    return prefixes


def read_state_dict(path: str) -> Tuple[Dict[str, torch.Tensor], dict]:
    """``(state_dict, meta)`` of an mmengine checkpoint."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path} does not exist')
    checkpoint = torch.load(path, map_location='cpu')
    if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint:
        keys = sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ValueError(f"{path} is not an mmengine checkpoint: no 'state_dict' (found {keys})")
    return checkpoint['state_dict'], checkpoint.get('meta') or {}


def without_pretrained_init(cfg):
    """``cfg`` (a model config) with every ``init_cfg`` of type ``Pretrained`` removed, so that
    building and initialising the detector downloads and reads nothing."""
    if isinstance(cfg, dict):
        kept = {}
        for key, value in cfg.items():
            if key == 'init_cfg':
                inits = value if isinstance(value, list) else [value]
                inits = [init for init in inits
                         if not (isinstance(init, dict) and init.get('type') == 'Pretrained')]
                value = inits if isinstance(value, list) else (inits[0] if inits else None)
            kept[key] = without_pretrained_init(value)
        return type(cfg)(kept)
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(without_pretrained_init(value) for value in cfg)
    return cfg


def finetune_load_report(config: str, state_dict: Dict[str, torch.Tensor]) -> Dict[str, List[str]]:
    """How ``state_dict`` loads into the detector of the fine-tuning ``config`` (mmrotate scope)."""
    from mmrotate.registry import MODELS

    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmrotate'))
    detector = MODELS.build(without_pretrained_init(cfg.model))
    return load_report(detector, state_dict)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Convert; the written meta, plus the load report under ``'load_report'`` with
    ``--finetune-config``."""
    args = parse_args(argv)
    prefixes = drop_prefixes(args)
    state_dict, source_meta = read_state_dict(args.checkpoint)
    kept, dropped = convert_pretrained(state_dict, prefixes)
    for prefix in prefixes:
        print(f'dropped {sum(key.startswith(prefix) for key in dropped):4d} keys {prefix}*')
    print(f'kept {len(kept)} of {len(state_dict)} keys')
    meta = dict(source=osp.abspath(args.checkpoint), dropped_prefixes=list(prefixes),
                dropped_keys=dropped,
                source_meta={key: source_meta[key] for key in SOURCE_META_KEYS
                             if key in source_meta})
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    torch.save(dict(meta=meta, state_dict=kept), args.out)
    print(f'wrote {args.out}')
    if args.finetune_config:
        report = finetune_load_report(args.finetune_config, kept)
        print(f'loading into the detector of {args.finetune_config}:')
        for name, keys in report.items():
            print(f'  {name}: {len(keys)}')
            for key in keys:
                print(f'    {key}')
        meta = dict(meta, load_report=report)
    return meta


if __name__ == '__main__':
    main()
