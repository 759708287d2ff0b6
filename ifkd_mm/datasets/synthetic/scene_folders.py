"""Scene-classification folders ``<root>/<name>/<class>/<file>.jpg`` (NWPU-RESISC45, AID, AFGR50
and any other class list)."""
from __future__ import annotations

import os
import zlib
from typing import Optional, Sequence

import cv2
import numpy as np

from .classes import AFGR50_CLASSES, AID_CLASSES, NWPU45_CLASSES
from .drawing import image_rng
from .folders import finish_folder, prepare_folder
from .scene_patterns import SCENE_PATTERNS, generic_pattern, scene_aircraft


def _norm(name: str) -> str:
    """``name`` in lower case, letters and digits only ('Baseball Field' -> 'baseballfield')."""
    return ''.join(ch for ch in name.lower() if ch.isalnum())


def scene_params(name: str, classes: Sequence[str], per_class: int = 12, img_size: int = 64,
                 seed: int = 0, style: str = 'auto', file_pattern: Optional[str] = None) -> dict:
    """The parameters :func:`make_scene_folders` records in its marker, with the defaults
    resolved: style 'auto' and the real file naming of ``name``."""
    if style == 'auto':
        style = 'aircraft' if name.upper().startswith('AFGR') else 'texture'
    if file_pattern is None:
        file_pattern = '{lower}_{i}.jpg' if name == 'AID' else '{cls}_{i:03d}.jpg'
    return dict(name=name, classes=list(classes), per_class=per_class, img_size=img_size,
                seed=seed, style=style, file_pattern=file_pattern)


def make_scene_folders(root: str, name: str, classes: Sequence[str], per_class: int = 12,
                       img_size: int = 64, seed: int = 0, style: str = 'auto',
                       file_pattern: Optional[str] = None) -> str:
    """Scene-classification folders ``root/<name>/<class>/<file>.jpg``; returns ``root/<name>``.

    ``style``: 'texture' (a distinct scene pattern per class; recognised names get a themed
    pattern: airplane, airport, baseball diamond / field, beach, bridge, bare land, others a
    per-class stripes / blobs / grid / rings pattern), 'aircraft' (one aircraft of the class's
    type per image, as in AFGR50) or 'auto' ('aircraft' for names starting with AFGR).
    ``file_pattern`` (``{cls}``, ``{lower}``, ``{i}`` = 1-based index) defaults to the real
    naming: AID ``{lower}_{i}.jpg``, otherwise ``{cls}_{i:03d}.jpg`` (NWPU-RESISC45).
    """
    if img_size < 16:
        raise ValueError(f'img_size must be >= 16, got {img_size}')
    if per_class < 1:
        raise ValueError(f'per_class must be >= 1, got {per_class}')
    params = scene_params(name, classes, per_class, img_size, seed, style, file_pattern)
    style, file_pattern = params['style'], params['file_pattern']
    path = os.path.join(root, name)
    prepare_folder(path)
    counts = {}
    for idx, cls in enumerate(classes):
        folder = os.path.join(path, cls.replace('/', '_'))
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            rng = image_rng(seed, f'{name}/{cls}', 'all', i)
            if style == 'aircraft':
                img = scene_aircraft(cls, rng, img_size)
            elif _norm(cls) in SCENE_PATTERNS:
                img = SCENE_PATTERNS[_norm(cls)](rng, img_size)
            else:
                class_params = np.random.default_rng([zlib.crc32(cls.encode()), idx])
                img = generic_pattern(idx % 4, class_params, rng, img_size)
            img = img.astype(np.float32) * rng.uniform(0.85, 1.15)
            img += rng.normal(0, 3.0, img.shape).astype(np.float32)
            img = np.clip(img, 0, 255).astype(np.uint8)
            fname = file_pattern.format(cls=cls.replace('/', '_'),
                                        lower=cls.lower().replace('/', '_'), i=i + 1)
            cv2.imwrite(os.path.join(folder, fname), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        counts[cls] = per_class
    return finish_folder(path, _norm(name), params, counts)


def make_nwpu45(root: str, per_class: int = 12, img_size: int = 64, seed: int = 0) -> str:
    """NWPU-RESISC45 subset (``NWPU45_CLASSES``): ``root/NWPU-RESISC45/<class>/<class>_001.jpg``."""
    return make_scene_folders(root, 'NWPU-RESISC45', NWPU45_CLASSES, per_class, img_size, seed)


def make_aid(root: str, per_class: int = 12, img_size: int = 64, seed: int = 0) -> str:
    """AID subset (``AID_CLASSES``): ``root/AID/<Class>/<class>_1.jpg``."""
    return make_scene_folders(root, 'AID', AID_CLASSES, per_class, img_size, seed)


def make_afgr50(root: str, per_class: int = 12, img_size: int = 64, seed: int = 0) -> str:
    """AFGR50 subset (``AFGR50_CLASSES``, aircraft types): ``root/AFGR50/<type>/<type>_001.jpg``."""
    return make_scene_folders(root, 'AFGR50', AFGR50_CLASSES, per_class, img_size, seed)
