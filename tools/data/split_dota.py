"""Cut DOTA images into square patches named ``{id}__{size}__{x}___{y}`` (KD-RNet: 600 px,
overlap 150 for training, 300 for testing), with mmrotate's own split functions.

    python tools/data/split_dota.py --src data/DOTA --out data/DOTA/split_600
    python tools/data/split_dota.py --src data/synthetic/DOTA --out data/synthetic/DOTA/split_128 \
        --size 128 --train-overlap 32 --test-overlap 64 --splits train:trainval val:val

``--src`` holds one folder per split with ``images/`` and (for labelled splits) ``labelTxt/``;
``--splits SRC:DST`` maps source folders to output folders (default ``train:trainval val:val
test:test``: the training split is cut with ``--train-overlap``, the others with
``--test-overlap``). Each output folder gets ``images/`` and, for labelled splits,
``annfiles/`` (one ``x1 y1 ... x4 y4 class difficult`` line per object that lies in the patch
with an IoF of at least ``--iof-thr``; objects cut by the border get difficulty 2, as with
mmrotate's tool). ``DOTAMetric(merge_patches=True)`` reads the offsets back from the names.

The patch geometry, the IoF selection and the cropping are mmrotate's
(``tools/data/dota/split/img_split.py``, shipped in the installed package): this is the KD-RNet
preset and a folder layout around it, with one fix: which objects the border cuts
(:func:`cut_by_window`).
"""
import argparse
import functools
import importlib.util
import os
import os.path as osp
from multiprocessing import Pool
from typing import Dict, List, Optional, Tuple

import numpy as np

MMROTATE = importlib.util.find_spec('mmrotate')  # located, not imported (no torch needed)
IMG_SPLIT = osp.join(osp.dirname(MMROTATE.origin) if MMROTATE else '', '.mim', 'tools', 'data',
                     'dota', 'split', 'img_split.py')
DEFAULT_SPLITS = ('train:trainval', 'val:val', 'test:test')


@functools.lru_cache(maxsize=None)
def load_img_split():
    """mmrotate's ``img_split`` module, loaded by path (its folder is not a package)."""
    if not osp.isfile(IMG_SPLIT):
        raise FileNotFoundError(f'mmrotate\'s split tool is not at {IMG_SPLIT}')
    spec = importlib.util.spec_from_file_location('mmrotate_img_split', IMG_SPLIT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cut_by_window(polygons: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Whether each ``(n, 8)`` polygon has a corner outside the window ``x1, y1, x2, y2``.

    mmrotate's ``get_window_obj`` calls an object cut when its IoF is below 1, dividing a float64
    intersection area by the float32 area of the object, so about a third of the objects lying
    wholly inside a patch (22 of 61 on a small synthetic layout) were written with difficulty 2.
    A polygon lies inside the (convex) window exactly when all its corners do.
    """
    corners = np.asarray(polygons, dtype=np.float64).reshape(-1, 4, 2)
    inside = (corners >= window[:2]) & (corners <= window[2:])
    return ~inside.all(axis=(1, 2))


def split_image(args: Tuple[dict, str, str, Optional[str], int, int, float, float]) -> int:
    """Cut one image (mmrotate's info dict) into patches; the number of patches written."""
    info, img_dir, img_out, ann_out, size, overlap, img_rate_thr, iof_thr = args
    img_split = load_img_split()
    windows = img_split.get_sliding_window(info, [size], [overlap], img_rate_thr)
    window_anns = img_split.get_window_obj(info, windows, iof_thr)
    for window, ann in zip(windows, window_anns):
        ann['trunc'] = cut_by_window(ann['bboxes'], window)
    patches = img_split.crop_and_save_img(info, windows, window_anns, img_dir, False, 0,
                                          img_out, ann_out or img_out, '.png')
    if ann_out is None:  # unlabelled split: crop_and_save_img wrote empty .txt files beside
        for patch in patches:
            os.remove(osp.join(img_out, patch['id'] + '.txt'))
    return len(patches)


def split_folder(src: str, dst: str, size: int, overlap: int, iof_thr: float = 0.7,
                 img_rate_thr: float = 0.6, nproc: int = 1) -> Dict[str, int]:
    """Cut ``src/images`` (+ ``src/labelTxt``) into ``dst/images`` (+ ``dst/annfiles``)."""
    if overlap >= size:
        raise ValueError(f'the overlap ({overlap}) must be smaller than the patch ({size})')
    img_dir, ann_dir = osp.join(src, 'images'), osp.join(src, 'labelTxt')
    labelled = osp.isdir(ann_dir)
    img_split = load_img_split()
    infos = img_split.load_dota(img_dir, ann_dir if labelled else None, nproc=1)
    if not infos:
        raise FileNotFoundError(f'no images in {img_dir}')
    img_out = osp.join(dst, 'images')
    ann_out = osp.join(dst, 'annfiles') if labelled else None
    for folder in (img_out, ann_out):
        if folder is not None:
            if osp.isdir(folder) and os.listdir(folder):
                raise FileExistsError(f'{folder} is not empty: choose a new --out')
            os.makedirs(folder, exist_ok=True)
    jobs = [(info, img_dir, img_out, ann_out, size, overlap, img_rate_thr, iof_thr)
            for info in sorted(infos, key=lambda info: info['id'])]
    if nproc > 1:
        with Pool(nproc) as pool:
            counts = pool.map(split_image, jobs)
    else:
        counts = [split_image(job) for job in jobs]
    return dict(images=len(infos), patches=sum(counts), labelled=int(labelled))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--src', required=True, help='DOTA root with <split>/images folders')
    parser.add_argument('--out', required=True, help='output root')
    parser.add_argument('--size', type=int, default=600, help='patch side (KD-RNet: 600)')
    parser.add_argument('--train-overlap', type=int, default=150,
                        help='overlap of training patches (KD-RNet: 150)')
    parser.add_argument('--test-overlap', type=int, default=300,
                        help='overlap of validation/test patches (KD-RNet: 300)')
    parser.add_argument('--splits', nargs='+',
                        help='SRC:DST folder pairs, the first being the training split (default: '
                        f'{" ".join(DEFAULT_SPLITS)}, leaving out those --src does not have)')
    parser.add_argument('--iof-thr', type=float, default=0.7,
                        help='minimal part of an object inside a patch to keep it there')
    parser.add_argument('--nproc', type=int, default=1, help='processes')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    for index, pair in enumerate(args.splits or DEFAULT_SPLITS):
        src, _, dst = pair.partition(':')
        if not osp.isdir(osp.join(args.src, src, 'images')):
            if args.splits is None:
                continue
            raise FileNotFoundError(f'{osp.join(args.src, src, "images")} does not exist')
        overlap = args.train_overlap if index == 0 else args.test_overlap
        stats = split_folder(osp.join(args.src, src), osp.join(args.out, dst or src), args.size,
                             overlap, args.iof_thr, nproc=args.nproc)
        print(f'{src} -> {osp.join(args.out, dst or src)}: {stats["images"]} images, '
              f'{stats["patches"]} patches of {args.size} px, overlap {overlap}'
              + ('' if stats['labelled'] else ' (no labels)'))


if __name__ == '__main__':
    main()
