"""Precompute IFKD's EDE priors with MobileSAM, once per image of a dataset split.

    python tools/ifkd/precompute_sam_prior.py CONFIG --checkpoint mobile_sam.pt --out-dir DIR \
        [--split train|val|test] [--source mask|embedding] [--device cpu|cuda]

For every image of the config's ``<split>_dataloader`` dataset it writes
``DIR/<image base name>.png``: ``round(sigmoid(MobileSAM(x)) * 255)`` as an 8-bit PNG at the
image's original resolution (MobileSAM's own preprocessing, the same map as EDE's online mode).
Existing files are skipped, and each file is written under a temporary name and then renamed, so
an interrupted run resumes where it stopped. Train with ``ede=dict(mode='cached', ...)`` and
``dict(type='LoadSAMPrior', prior_dir=DIR)`` right after ``LoadImageFromFile``.
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Sequence, Tuple

import mmcv
import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.registry import DATASETS, init_default_scope
from torch import nn
from tqdm import tqdm

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
import ifkd_mm  # noqa: E402,F401  (registers the datasets)
from ifkd_mm.datasets.sam_prior import prior_filename  # noqa: E402
from ifkd_mm.distillation.ifkd.ede import build_mobile_sam, mobile_sam_logits  # noqa: E402


def dataset_image_paths(cfg: Config, split: str) -> List[str]:
    """The distinct image paths of the config's ``<split>_dataloader`` dataset, in order."""
    loader = cfg.get(f'{split}_dataloader')
    if loader is None:
        raise KeyError(f'the config has no {split}_dataloader')
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    dataset_cfg = loader.dataset.copy()
    dataset_cfg['pipeline'] = []
    dataset = DATASETS.build(dataset_cfg)
    paths = dict.fromkeys(dataset.get_data_info(i)['img_path'] for i in range(len(dataset)))
    return list(paths)


def prior_image(logits: torch.Tensor) -> np.ndarray:
    """The 8-bit prior ``round(sigmoid(logits) * 255)`` of (1, H, W) logits, (H, W) uint8."""
    return (logits[0].sigmoid() * 255).round().byte().cpu().numpy()


def precompute_priors(sam: nn.Module, img_paths: Sequence[str], out_dir: str,
                      source: str = 'mask') -> Tuple[int, int]:
    """Write the prior of every image into ``out_dir``; returns (written, skipped)."""
    names = [prior_filename(path) for path in img_paths]
    if len(set(names)) != len(names):
        clashes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f'images with one base name would share a prior file: {clashes[:5]}')
    os.makedirs(out_dir, exist_ok=True)
    written = skipped = 0
    for path, name in zip(tqdm(img_paths, desc='MobileSAM priors'), names):
        target = osp.join(out_dir, name)
        if osp.isfile(target):
            skipped += 1
            continue
        rgb = mmcv.imread(path, flag='color', channel_order='rgb')
        image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float()
        logits = mobile_sam_logits(sam, [image], source)[0]
        partial = osp.join(out_dir, f'.{name}.partial.png')
        if not mmcv.imwrite(prior_image(logits), partial, auto_mkdir=False):
            raise OSError(f'could not write {partial}')
        os.replace(partial, target)
        written += 1
    return written, skipped


def main(argv: Sequence[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='a detection (or distillation) config with the dataset')
    parser.add_argument('--checkpoint', required=True, help='MobileSAM vit_t weights')
    parser.add_argument('--out-dir', required=True, help='folder for the prior PNGs')
    parser.add_argument('--split', default='train', choices=('train', 'val', 'test'))
    parser.add_argument('--source', default='mask', choices=('mask', 'embedding'),
                        help="MobileSAM output (EDE's source; it must match the training config)")
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. train_dataloader.dataset.data_root=')
    args = parser.parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'--checkpoint: no MobileSAM checkpoint at {args.checkpoint} '
                                '(download mobile_sam.pt from the MobileSAM project)')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    paths = dataset_image_paths(cfg, args.split)
    sam = build_mobile_sam(args.checkpoint).to(args.device)
    written, skipped = precompute_priors(sam, paths, args.out_dir, args.source)
    print(f'{written} priors written, {skipped} already there, in {args.out_dir}')


if __name__ == '__main__':
    main()
