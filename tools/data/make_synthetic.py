"""Write small seeded synthetic remote-sensing datasets in their official on-disk layouts.

    python tools/data/make_synthetic.py --out data/synthetic
    python tools/data/make_synthetic.py --out data/synthetic --datasets shiprs dota --seed 1

A dataset whose folder already holds a complete copy made with the same parameters is skipped;
one made with other parameters (or an unfinished one) is written again. A folder that was not
written by this generator is never touched (the command stops with an error instead).
"""
import argparse
import importlib.util
import os
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)


def load_synthetic():
    """Load the package ``ifkd_mm/datasets/synthetic/`` by path (``ifkd_mm/__init__`` needs
    torch); its modules import each other relatively, so it is loaded as a package."""
    name = 'ifkd_mm_datasets_synthetic'
    if name in sys.modules:
        return sys.modules[name]
    folder = os.path.join(REPO_ROOT, 'ifkd_mm', 'datasets', 'synthetic')
    spec = importlib.util.spec_from_file_location(name, os.path.join(folder, '__init__.py'),
                                                  submodule_search_locations=[folder])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # relative imports (and dataclasses) look the package up here
    spec.loader.exec_module(module)
    return module


def parse_args(synthetic, argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data/synthetic',
                        help='root folder; every dataset goes to <out>/<its official name>')
    parser.add_argument('--datasets', nargs='+', default=list(synthetic.MAKERS),
                        choices=list(synthetic.MAKERS), metavar='NAME',
                        help=f'which to write (default: all of {" ".join(synthetic.MAKERS)})')
    parser.add_argument('--seed', type=int, default=0, help='random seed (>= 0; default 0)')
    parser.add_argument('--img-size', type=int, default=256,
                        help='side of the detection images in pixels (default 256)')
    parser.add_argument('--num-train', type=int, default=48,
                        help='training images per detection dataset (default 48)')
    parser.add_argument('--num-val', type=int, default=16,
                        help='validation images per detection dataset, and test images where '
                             'the dataset has a test split (default 16)')
    parser.add_argument('--per-class', type=int, default=12,
                        help='images per class of the scene-classification folders (default 12)')
    parser.add_argument('--scene-img-size', type=int, default=64,
                        help='side of the scene-classification images (default 64)')
    parser.add_argument('--force', action='store_true',
                        help='write again even if a complete copy with the same parameters exists')
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error('--seed must be >= 0')
    return args


def describe(counts: dict) -> str:
    """``'train 48 img / 131 obj, val 16 img / 40 obj'`` or ``'airplane 12, airport 12'``."""
    parts = []
    for key, value in counts.items():
        if isinstance(value, dict):
            text = f"{key} {value['images']} img / {value['objects']} obj"
            if value.get('same_as'):
                text += f" (= {value['same_as']})"
            parts.append(text)
        else:
            parts.append(f'{key} {value}')
    return ', '.join(parts)


def main(argv=None) -> int:
    synthetic = load_synthetic()
    args = parse_args(synthetic, argv)
    total = time.perf_counter()
    for name in args.datasets:
        if name in synthetic.SCENE_DATASETS:
            kwargs = dict(per_class=args.per_class, img_size=args.scene_img_size, seed=args.seed)
        else:
            kwargs = dict(num_train=args.num_train, num_val=args.num_val,
                          img_size=args.img_size, seed=args.seed)
        start = time.perf_counter()
        path, generated, marker = synthetic.ensure_dataset(name, args.out, force=args.force,
                                                           **kwargs)
        status = 'wrote' if generated else 'skip (complete, same parameters)'
        print(f'{status:33s} {name:12s} {path}: {describe(marker["counts"])} '
              f'[{time.perf_counter() - start:.1f} s]', flush=True)
    print(f'done in {time.perf_counter() - total:.1f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
