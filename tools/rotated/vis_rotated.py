"""Draw rotated boxes and DKED's oriented Gaussian mask on an image, as a PNG.

    python tools/rotated/vis_rotated.py IMAGE --out out.png [--ann LABELTXT]
        [--pred PREDS.pkl] [--score-thr 0.3] [--mask-stride 8] [--sigma-ratio 0.25]

* ``--ann``: a DOTA ``labelTxt``/``annfiles`` file (``x1 y1 ... x4 y4 class difficult``); its
  boxes are drawn in green and make the Gaussian mask ``G`` of DKED's response distillation
  (:func:`ifkd_mm.distillation.rotated.oriented_gaussian_mask`, at ``--mask-stride``), shown as a
  red overlay in a second panel beside the image.
* ``--pred``: predictions dumped by ``tools/test.py --out``; those of this image (matched by
  ``img_path``) with a score of at least ``--score-thr`` are drawn in yellow with their scores.
"""
import argparse
import os.path as osp
import pickle
from typing import List, Optional, Tuple

import cv2
import numpy as np
import torch

from ifkd_mm.distillation.rotated.dked import oriented_gaussian_mask

GT_COLOUR = (0, 255, 0)  # BGR
PRED_COLOUR = (0, 255, 255)


def read_dota_boxes(path: str) -> Tuple[np.ndarray, List[str]]:
    """The quadrilaterals ``(n, 4, 2)`` and class names of a DOTA annotation file."""
    polygons, names = [], []
    with open(path) as f:
        for line in f:
            fields = line.split()
            if len(fields) < 9 or line.startswith(('imagesource:', 'gsd:')):
                continue
            polygons.append(np.asarray(fields[:8], dtype=np.float32).reshape(4, 2))
            names.append(fields[8])
    return np.asarray(polygons, dtype=np.float32).reshape(-1, 4, 2), names


def polygons_to_rboxes(polygons: np.ndarray) -> np.ndarray:
    """Minimum-area rotated boxes ``(cx, cy, w, h, theta)`` (radians) of ``(n, 4, 2)`` corners."""
    boxes = []
    for polygon in polygons:
        (cx, cy), (w, h), angle = cv2.minAreaRect(polygon)
        boxes.append((cx, cy, w, h, np.deg2rad(angle)))
    return np.asarray(boxes, dtype=np.float32).reshape(-1, 5)


def rbox_corners(boxes: np.ndarray) -> np.ndarray:
    """The 4 corners ``(n, 4, 2)`` of rotated boxes ``(n, 5)`` (mmrotate's rbox2qbox)."""
    cx, cy, w, h, theta = (boxes[:, k] for k in range(5))
    along = np.stack([np.cos(theta), np.sin(theta)], -1) * (w / 2)[:, None]
    across = np.stack([-np.sin(theta), np.cos(theta)], -1) * (h / 2)[:, None]
    centre = np.stack([cx, cy], -1)
    return np.stack([centre - along - across, centre + along - across,
                     centre + along + across, centre - along + across], axis=1)


def draw_polygons(image: np.ndarray, polygons: np.ndarray, colour: Tuple[int, int, int],
                  labels: Optional[List[str]] = None) -> None:
    """Outline each polygon in place, with its label at its first corner."""
    for index, polygon in enumerate(polygons):
        points = np.round(polygon).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(image, [points], isClosed=True, color=colour, thickness=1)
        if labels:
            x, y = points[0, 0]
            cv2.putText(image, labels[index], (int(x), int(y) - 2), cv2.FONT_HERSHEY_SIMPLEX,
                        0.35, colour, 1, cv2.LINE_AA)


def mask_panel(image: np.ndarray, rboxes: np.ndarray, stride: int,
               sigma_ratio: float) -> np.ndarray:
    """The image with ``G`` (computed at ``stride``, shown at full size) blended in red."""
    height, width = image.shape[:2]
    size = (int(np.ceil(height / stride)), int(np.ceil(width / stride)))
    mask = oriented_gaussian_mask(torch.from_numpy(rboxes), size, stride, sigma_ratio).numpy()
    mask = cv2.resize(mask, (size[1] * stride, size[0] * stride),
                      interpolation=cv2.INTER_NEAREST)[:height, :width]
    red = np.zeros_like(image)
    red[..., 2] = 255
    alpha = (0.7 * mask)[..., None]
    return (image * (1 - alpha) + red * alpha).astype(np.uint8)


def predictions_of(path: str, image_path: str, score_thr: float) -> Tuple[np.ndarray, List[str]]:
    """Rotated boxes and ``label:score`` texts of one image from a ``tools/test.py --out`` dump."""
    with open(path, 'rb') as f:
        results = pickle.load(f)
    for result in results:
        if osp.basename(result.get('img_path', '')) == osp.basename(image_path):
            pred = result['pred_instances']
            keep = pred['scores'] >= score_thr
            boxes = np.asarray(pred['bboxes'][keep], dtype=np.float32).reshape(-1, 5)
            texts = [f'{int(label)}:{float(score):.2f}'
                     for label, score in zip(pred['labels'][keep], pred['scores'][keep])]
            return boxes, texts
    raise KeyError(f'{path} has no predictions of {osp.basename(image_path)}')


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('image')
    parser.add_argument('--out', required=True, help='output PNG')
    parser.add_argument('--ann', help='DOTA annotation file of the image (GT boxes, mask)')
    parser.add_argument('--pred', help='tools/test.py --out pickle')
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--mask-stride', type=int, default=8,
                        help='feature stride at which the Gaussian mask is computed')
    parser.add_argument('--sigma-ratio', type=float, default=0.25)
    args = parser.parse_args(argv)
    image = cv2.imread(args.image)
    if image is None:
        raise FileNotFoundError(f'cannot read the image {args.image}')
    drawn, panels = image.copy(), []
    if args.pred:
        boxes, texts = predictions_of(args.pred, args.image, args.score_thr)
        draw_polygons(drawn, rbox_corners(boxes), PRED_COLOUR, texts)
    if args.ann:
        polygons, names = read_dota_boxes(args.ann)
        draw_polygons(drawn, polygons, GT_COLOUR, names)
        panels.append(mask_panel(image, polygons_to_rboxes(polygons), args.mask_stride,
                                 args.sigma_ratio))
    if not args.out.lower().endswith('.png'):
        raise ValueError(f'--out must be a .png file, got {args.out}')
    if not cv2.imwrite(args.out, np.concatenate([drawn] + panels, axis=1)):
        raise OSError(f'could not write {args.out}')
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
