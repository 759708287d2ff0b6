"""MutDet's pseudo-labels (section 3.1) as a resumable, sharded three-stage pipeline.

1. ``extract``: per image, masks (SAM's automatic mask generator) -> le90 rotated boxes ->
   one embedding per box; written to ``OUT/raw/<image stem>.npz``.
2. ``fit``: streaming PCA to 256-d and k-means into 256 clusters over every raw embedding
   (memory bounded by the chunk size, not by the number of boxes); ``OUT/pseudo_classes.npz``.
3. ``assign``: per image, the boxes with their cluster ids and 256-d embeddings;
   ``OUT/labels/<image stem>.npz``, what :class:`MutDetPseudoLabelDataset` reads.

Every file is written atomically (:func:`write_npz`), so an interrupted run leaves only complete
files; a second run skips the images whose file exists. ``extract`` and ``assign`` split the
images into shards (``shard`` of ``num_shards``, every ``num_shards``-th image of the sorted list)
that processes or machines run side by side on the same output folder.
"""
import json
import os
import os.path as osp
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional

import cv2
import numpy as np
from mmengine.registry import Registry
from tqdm import tqdm

from .storage import read_npz, write_npz

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.tif', '.tiff', '.bmp')
RAW_FIELDS = ('boxes', 'embeddings', 'image_name', 'image_shape', 'num_masks', 'dropped')
LABEL_FIELDS = ('boxes', 'labels', 'embeddings', 'image_name', 'image_shape')
PSEUDO_LABEL_PARTS = Registry('mutdet pseudo-label part')


@dataclass
class StageReport:
    """How many images a stage processed and skipped (finished by an earlier run), and its time."""
    stage: str
    processed: int
    skipped: int
    seconds: float

    def __str__(self) -> str:
        rate = self.processed / self.seconds if self.seconds > 0 else float('nan')
        return (f'{self.stage}: {self.processed} images processed ({rate:.2f} images/s), '
                f'{self.skipped} finished images skipped')


@PSEUDO_LABEL_PARTS.register_module()
class ComponentMaskGenerator:
    """Deterministic masks without a network: the connected components (8-neighbourhood) of the
    pixels whose colour differs from the image's median colour by more than ``threshold`` in some
    channel. For synthetic images of objects on a plain background, and for tests."""

    def __init__(self, threshold: int = 30) -> None:
        self.threshold = threshold

    @property
    def settings(self) -> dict:
        return dict(type='ComponentMaskGenerator', threshold=self.threshold)

    def generate(self, image: np.ndarray) -> List[np.ndarray]:
        background = np.median(image.reshape(-1, image.shape[-1]), axis=0)
        foreground = (np.abs(image.astype(np.int32) - background).max(-1) > self.threshold)
        count, components = cv2.connectedComponents(foreground.astype(np.uint8), connectivity=8)
        return [components == index for index in range(1, count)]


def list_images(image_dir: str) -> List[str]:
    """Sorted image file names of a folder; a clear error for a missing or image-less folder."""
    if not osp.isdir(image_dir):
        raise FileNotFoundError(f'image folder {image_dir} does not exist')
    names = sorted(name for name in os.listdir(image_dir)
                   if name.lower().endswith(IMAGE_SUFFIXES))
    if not names:
        raise ValueError(f'no images ({", ".join(IMAGE_SUFFIXES)}) in {image_dir}')
    return names


def select_shard(names: List[str], shard: int, num_shards: int) -> List[str]:
    """Every ``num_shards``-th name starting at ``shard`` (shards of one list never overlap)."""
    if not 0 <= shard < num_shards:
        raise ValueError(f'shard must be in [0, {num_shards}), got {shard}')
    return names[shard::num_shards]


def read_rgb(path: str) -> np.ndarray:
    """An image as RGB uint8; a clear error naming the file when it cannot be read or is empty."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f'cannot read image {path} (missing, truncated or not an image)')
    if image.size == 0:
        raise ValueError(f'image {path} is empty')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def stem(name: str) -> str:
    return osp.splitext(name)[0]


def raw_path(out_dir: str, name: str) -> str:
    return osp.join(out_dir, 'raw', stem(name) + '.npz')


def label_path(out_dir: str, name: str) -> str:
    return osp.join(out_dir, 'labels', stem(name) + '.npz')


def classes_path(out_dir: str) -> str:
    return osp.join(out_dir, 'pseudo_classes.npz')


def run_stage(stage: str, names: List[str], target: Callable[[str], str],
              process: Callable[[str], None]) -> StageReport:
    """Run ``process`` on every name whose ``target`` file does not exist yet, with a progress
    bar (images/s and time left)."""
    todo = [name for name in names if not osp.exists(target(name))]
    start = time.perf_counter()
    for name in tqdm(todo, desc=stage, unit='img', dynamic_ncols=True):
        process(name)
    return StageReport(stage, len(todo), len(names) - len(todo), time.perf_counter() - start)


def extract(image_dir: str, out_dir: str, mask_generator, embedder, min_area: float = 16,
            min_side: float = 2, shard: int = 0, num_shards: int = 1) -> StageReport:
    """Stage 1: masks, boxes and embeddings of this shard's images (see the module docstring)."""
    from .boxes import masks_to_rotated_boxes

    def process(name: str) -> None:
        image = read_rgb(osp.join(image_dir, name))
        masks = mask_generator.generate(image)
        boxes, _, dropped = masks_to_rotated_boxes(masks, min_area=min_area, min_side=min_side)
        embeddings = embedder.embed(image, boxes)
        write_npz(raw_path(out_dir, name), boxes=boxes.astype(np.float32),
                  embeddings=embeddings.astype(np.float16), image_name=np.array(name),
                  image_shape=np.array(image.shape[:2], dtype=np.int64),
                  num_masks=np.array(len(masks), dtype=np.int64),
                  dropped=np.array(json.dumps(dropped, sort_keys=True)))

    names = select_shard(list_images(image_dir), shard, num_shards)
    return run_stage('extract', names, lambda name: raw_path(out_dir, name), process)


def require_extracted(out_dir: str, names: List[str]) -> None:
    missing = [name for name in names if not osp.exists(raw_path(out_dir, name))]
    if missing:
        raise RuntimeError(f'{len(missing)} of {len(names)} images are not extracted yet (e.g. '
                           f'{missing[0]}): run the extract stage of every shard first')


def raw_embeddings(out_dir: str, names: List[str]) -> Iterator[np.ndarray]:
    """The raw embeddings of every image, one (n_i, D) float32 array at a time."""
    for name in names:
        embeddings = read_npz(raw_path(out_dir, name), RAW_FIELDS)['embeddings']
        if len(embeddings):
            yield embeddings.astype(np.float32)


def fit(image_dir: str, out_dir: str, dim: int = 256, num_clusters: int = 256, seed: int = 0,
        batch_size: int = 4096):
    """Stage 2: fit the PCA and the k-means centres on all images (skipped when saved)."""
    from .clustering import PseudoClasses, fit_pseudo_classes

    path = classes_path(out_dir)
    if osp.exists(path):
        return PseudoClasses.load(path)
    names = list_images(image_dir)
    require_extracted(out_dir, names)
    classes = fit_pseudo_classes(lambda: raw_embeddings(out_dir, names), dim=dim,
                                 num_clusters=num_clusters, seed=seed, batch_size=batch_size)
    classes.save(path)
    return classes


def assign(image_dir: str, out_dir: str, classes, shard: int = 0,
           num_shards: int = 1) -> StageReport:
    """Stage 3: every box of this shard's images gets its cluster id and 256-d embedding."""

    def process(name: str) -> None:
        raw = read_npz(raw_path(out_dir, name), RAW_FIELDS)
        labels, embeddings = classes.assign(raw['embeddings'].astype(np.float32))
        write_npz(label_path(out_dir, name), boxes=raw['boxes'],
                  labels=labels.astype(np.int64), embeddings=embeddings.astype(np.float16),
                  image_name=raw['image_name'], image_shape=raw['image_shape'])

    names = select_shard(list_images(image_dir), shard, num_shards)
    require_extracted(out_dir, names)
    return run_stage('assign', names, lambda name: label_path(out_dir, name), process)


def summarize(image_dir: str, out_dir: str) -> Dict[str, object]:
    """Images, boxes per image, empty images and dropped masks over the extracted images."""
    names = [name for name in list_images(image_dir) if osp.exists(raw_path(out_dir, name))]
    boxes, masks, dropped = [], 0, {}
    for name in names:
        raw = read_npz(raw_path(out_dir, name), RAW_FIELDS)
        boxes.append(len(raw['boxes']))
        masks += int(raw['num_masks'])
        for reason, count in json.loads(str(raw['dropped'])).items():
            dropped[reason] = dropped.get(reason, 0) + count
    counts = np.array(boxes or [0])
    return dict(images=len(names), boxes=int(counts.sum()), masks=masks,
                boxes_per_image=dict(mean=round(float(counts.mean()), 2),
                                     median=float(np.median(counts)), max=int(counts.max())),
                empty_images=int((counts == 0).sum()) if names else 0,
                dropped_masks=dict(sorted(dropped.items())))


def build_part(cfg: Optional[dict]):
    """A mask generator or embedder from its config (``PSEUDO_LABEL_PARTS``)."""
    return PSEUDO_LABEL_PARTS.build(dict(cfg))
