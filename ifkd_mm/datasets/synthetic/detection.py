"""Shared by the detection layouts: argument checks, the split plan, and one image with its
objects drawn from the image's own random stream."""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

from .drawing import image_rng
from .objects import SynthObject, place_objects
from .render import PALETTES, render_optical, render_sar
from .shapes import Template


def split_plan(num_train: int, num_val: int, num_test: int = 0) -> List[Tuple[str, int]]:
    """``[('train', num_train), ('val', num_val)]`` plus ``('test', num_test)`` if non-zero."""
    for n, name in ((num_train, 'num_train'), (num_val, 'num_val')):
        if n < 1:
            raise ValueError(f'{name} must be >= 1, got {n}')
    plan = [('train', num_train), ('val', num_val)]
    if num_test:
        plan.append(('test', num_test))
    return plan


def check_img_size(img_size: int) -> None:
    """Refuse detection images smaller than 32 px."""
    if img_size < 32:
        raise ValueError(f'img_size must be >= 32, got {img_size}')


def generate_image(dataset: str, split: str, index: int, seed: int, img_size: int,
                   classes: Sequence[str], templates: Dict[str, Template],
                   style: str) -> Tuple[np.ndarray, List[SynthObject], np.random.Generator]:
    """Image ``index`` of ``split``: its objects placed and rendered (``style``: 'sar', a
    ``PALETTES`` kind, or anything else for a random optical kind). Returns the BGR image, the
    objects and the image's random stream (for any further draws of the caller)."""
    rng = image_rng(seed, dataset, split, index)
    objects = place_objects(rng, img_size, classes, templates)
    if style == 'sar':
        img = render_sar(rng, img_size, objects)
    else:
        kind = style if style in PALETTES else str(rng.choice(['ground', 'ground', 'concrete',
                                                               'sea']))
        img = render_optical(rng, img_size, objects, kind)
    return img, objects, rng
