"""SAM masks to le90 rotated boxes: MutDet's pseudo-label boxes (MutDet section 3.1).

The paper turns each SAM mask into an oriented box; the public code takes the mask's external
contour with the most points and fits ``cv2.minAreaRect`` to it. Here the contour is the largest
by enclosed area (``cv2.contourArea``; ties, e.g. several zero-area lines, go to the one with more
points): the point count favours a long ragged outline over a compact larger region, and the box
is meant to cover the main body of the mask.

Coordinates follow mmdet: pixel ``(row i, column j)`` covers ``[j, j + 1) x [i, i + 1)``, so a
contour point (a pixel index) is the pixel centre ``(j + 0.5, i + 0.5)``; the public code leaves
out the half pixel. Sides are measured between the outermost pixel centres: unbiased for tilted
edges, one pixel short for axis-aligned ones. The rectangle's corners are turned into a box by
mmrotate's own ``qbox2rbox`` and ``RotatedBoxes.regularize_boxes('le90')``, so that the angle
convention is mmrotate's whatever OpenCV's ``minAreaRect`` convention is: ``(cx, cy, w, h,
theta)`` with ``w >= h`` and ``theta`` in ``[-pi/2, pi/2)`` radians.
"""
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from mmrotate.structures.bbox import RotatedBoxes, qbox2rbox

DROP_REASONS = ('empty', 'degenerate', 'tiny')


def largest_external_contour(mask: np.ndarray) -> Optional[np.ndarray]:
    """The (K, 2) pixel indices (x, y) of the mask's largest external contour; None if empty."""
    if mask.ndim != 2:
        raise ValueError(f'a mask must be a 2-D (H, W) array, got shape {mask.shape}')
    contours, _ = cv2.findContours((mask != 0).astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    largest = max(contours, key=lambda contour: (cv2.contourArea(contour), len(contour)))
    return largest.reshape(-1, 2)


def mask_to_corners(mask: np.ndarray) -> Optional[np.ndarray]:
    """The (4, 2) float32 corners of the minimum-area rectangle of the mask's largest contour."""
    contour = largest_external_contour(mask)
    if contour is None:
        return None
    pixel_centres = contour.astype(np.float32) + 0.5
    return cv2.boxPoints(cv2.minAreaRect(pixel_centres)).astype(np.float32)


def corners_to_rotated_boxes(corners: np.ndarray) -> np.ndarray:
    """(N, 4, 2) rectangle corners to (N, 5) float32 le90 boxes, through mmrotate's converters."""
    quads = torch.from_numpy(np.ascontiguousarray(corners, dtype=np.float32).reshape(-1, 8))
    boxes = RotatedBoxes(qbox2rbox(quads)).regularize_boxes('le90')
    return boxes.numpy().astype(np.float32)


def mask_to_rotated_box(mask: np.ndarray) -> Optional[np.ndarray]:
    """A mask's le90 box ``(cx, cy, w, h, theta)`` (float32, pixels, radians); None if empty."""
    corners = mask_to_corners(mask)
    if corners is None:
        return None
    return corners_to_rotated_boxes(corners[None])[0]


def masks_to_rotated_boxes(masks: Sequence[np.ndarray],
                           min_area: float = 16,
                           min_side: float = 2
                           ) -> Tuple[np.ndarray, np.ndarray, Dict[str, int]]:
    """Boxes of the usable masks, which masks they came from, and why the others were dropped.

    A mask is dropped as ``'empty'`` (no pixel set), ``'degenerate'`` (its box's shorter side is
    under ``min_side`` px: a point or a line) or ``'tiny'`` (box area under ``min_area`` px^2),
    checked in that order. The public code keeps every mask.

    Returns:
        (boxes (N, 5) float32 le90, indices of the kept masks (N,) int64, dropped counts by
        reason: ``{'empty': ..., 'degenerate': ..., 'tiny': ...}``).
    """
    dropped = dict.fromkeys(DROP_REASONS, 0)
    corners, nonempty = [], []
    for index, mask in enumerate(masks):
        mask_corners = mask_to_corners(mask)
        if mask_corners is None:
            dropped['empty'] += 1
            continue
        corners.append(mask_corners)
        nonempty.append(index)
    boxes = corners_to_rotated_boxes(np.asarray(corners, dtype=np.float32).reshape(-1, 4, 2))
    nonempty = np.asarray(nonempty, dtype=np.int64)
    degenerate = boxes[:, 3] < min_side
    tiny = ~degenerate & (boxes[:, 2] * boxes[:, 3] < min_area)
    dropped['degenerate'] = int(degenerate.sum())
    dropped['tiny'] = int(tiny.sum())
    keep = ~(degenerate | tiny)
    return boxes[keep], nonempty[keep], dropped
