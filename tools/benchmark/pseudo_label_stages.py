"""Throughput of each stage of MutDet's pseudo-labelling (masks, boxes, embeddings) in images/s.

    python tools/benchmark/pseudo_label_stages.py [--config CONFIG] [--num-images 2] \
        [--img-size 800] [--boxes-per-image 100] [--points-per-side N] [--threads N] \
        [--device cpu|cuda] [--out JSON]

Runs the parts of a pseudo-label config (default the MobileSAM one, with the paper's 64 x 64 point
grid) on ``--num-images`` synthetic DOTA-layout images of ``--img-size`` px written to a temporary
folder (``ifkd_mm.datasets.synthetic.make_dota``), one stage after the other, in this process:

* ``masks``: the automatic mask generator on each image (the image encoder and the point grid
  through the mask decoder; the model is built and warmed up on the first image before timing);
* ``boxes``: the masks' minimum-area rectangles (``masks_to_rotated_boxes``);
* ``embeddings``: the box embedder on ``--boxes-per-image`` boxes per image (the synthetic
  image's boxes repeated or cut to that number): random weights without a checkpoint, real
  masks count would vary with them, so the number of crops is fixed instead.

Without checkpoints the weights are random (no downloads); the time of the masks stage is that of
the real architecture and point grid, but how many masks survive the thresholds, and so the time
of the boxes stage, depends on the weights. Printed: seconds per image and images/s per stage, the
number of masks and boxes per image, the device, threads and torch version.
"""
import argparse
import json
import os.path as osp
import platform
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402

from ifkd_mm.pretraining.mutdet import pseudo_labels  # noqa: E402
from ifkd_mm.pretraining.mutdet.boxes import masks_to_rotated_boxes  # noqa: E402
from ifkd_mm.pretraining.mutdet.embeddings import DEFAULT_BACKBONE  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIG = osp.join(REPO, 'configs/mutdet/pseudo-labels_mobilesam-vit-t_r50.py')


def synthetic_images(folder: str, num_images: int, img_size: int) -> List[np.ndarray]:
    from ifkd_mm.datasets.synthetic import make_dota

    make_dota(folder, num_train=num_images, num_val=1, img_size=img_size, seed=0)
    images = osp.join(folder, 'DOTA', 'train', 'images')
    return [pseudo_labels.read_rgb(osp.join(images, name))
            for name in pseudo_labels.list_images(images)]


def fixed_boxes(boxes: np.ndarray, count: int, img_size: int) -> np.ndarray:
    """``count`` boxes: ``boxes`` repeated (or one centred box when there are none)."""
    if not len(boxes):
        boxes = np.array([[img_size / 2, img_size / 2, img_size / 8, img_size / 16, 0.3]],
                         dtype=np.float32)
    return np.resize(boxes, (count, 5)).astype(np.float32)


def time_stage(run, inputs: Sequence) -> tuple:
    outputs, start = [], time.perf_counter()
    for item in inputs:
        outputs.append(run(item))
    return outputs, (time.perf_counter() - start) / len(inputs)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--num-images', type=int, default=2)
    parser.add_argument('--img-size', type=int, default=800)
    parser.add_argument('--boxes-per-image', type=int, default=100)
    parser.add_argument('--points-per-side', type=int,
                        help="overrides the config's point grid (the paper's 64 takes minutes per "
                             'image on a CPU)')
    parser.add_argument('--threads', type=int, help='torch threads (default: torch decides)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out', help='write the results to this JSON file')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    generator_cfg = dict(cfg.mask_generator, checkpoint=None, device=args.device)
    if args.points_per_side:
        generator_cfg['points_per_side'] = args.points_per_side
    generator = pseudo_labels.build_part(generator_cfg)
    torch.manual_seed(0)
    backbone = dict(cfg.embedder.get('backbone') or DEFAULT_BACKBONE, init_cfg=None)
    embedder = pseudo_labels.build_part(dict(cfg.embedder, device=args.device,
                                             init_checkpoint=None, backbone=backbone))
    with tempfile.TemporaryDirectory() as folder:
        images = synthetic_images(folder, args.num_images, args.img_size)
    generator.generate(images[0])  # builds the model and warms it up
    masks, mask_seconds = time_stage(generator.generate, images)
    boxes, box_seconds = time_stage(lambda m: masks_to_rotated_boxes(m, **cfg.box_filter)[0],
                                    masks)
    crops = [(image, fixed_boxes(b, args.boxes_per_image, args.img_size))
             for image, b in zip(images, boxes)]
    embedder.embed(*crops[0])
    _, embed_seconds = time_stage(lambda item: embedder.embed(*item), crops)
    results = {
        'masks': dict(seconds_per_image=mask_seconds,
                      per_image=float(np.mean([len(m) for m in masks]))),
        'boxes': dict(seconds_per_image=box_seconds,
                      per_image=float(np.mean([len(b) for b in boxes]))),
        'embeddings': dict(seconds_per_image=embed_seconds, per_image=args.boxes_per_image)}
    print(f'{args.num_images} synthetic images of {args.img_size} px, '
          f'{osp.basename(args.config)} ({generator.settings["points_per_side"]}^2 points), '
          f'random weights, device {args.device}, '
          f'{torch.get_num_threads()} threads, torch {torch.__version__}, {platform.processor()}')
    print('| stage | s / image | images / s | items / image |')
    print('|---|---:|---:|---:|')
    for stage, row in results.items():
        row['images_per_second'] = 1 / row['seconds_per_image']
        print(f"| {stage} | {row['seconds_per_image']:.3f} | {row['images_per_second']:.2f} | "
              f"{row['per_image']:.1f} |")
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(settings=vars(args), results=results), f, indent=2)
    return results


if __name__ == '__main__':
    main()
