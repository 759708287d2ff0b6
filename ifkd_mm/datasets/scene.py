"""Scene classification folders (NWPU-RESISC45, AID, AFGR50) with a seeded train-ratio split."""
from typing import List

import numpy as np
from mmpretrain.datasets import CustomDataset

from ..registry import CLS_DATASETS


def train_ratio_split(labels: List[int], train_ratio: float, seed: int) -> np.ndarray:
    """Boolean mask of the training samples: ``round(ratio * n_c)`` (at least 1) per class.

    The split is stratified by class and depends only on ``labels``, ``train_ratio`` and ``seed``,
    so the train and test datasets built with the same arguments are disjoint and cover all.
    """
    if not 0 < train_ratio < 1:
        raise ValueError(f'train_ratio must be in (0, 1), got {train_ratio}')
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    is_train = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < 2:
            raise ValueError(f'class {label} has {len(members)} image(s); a train/test split '
                             'needs at least 2 per class')
        n_train = min(len(members) - 1, max(1, int(round(train_ratio * len(members)))))
        is_train[rng.permutation(members)[:n_train]] = True
    return is_train


@CLS_DATASETS.register_module()
class SceneFolderDataset(CustomDataset):
    """One folder per class; ``split='train'`` or ``'test'`` of a seeded ``train_ratio`` split.

    Metrics: overall accuracy (mmpretrain ``Accuracy``) and ``ConfusionMatrix``.
    """

    def __init__(self, split: str = 'train', train_ratio: float = 0.2, seed: int = 0,
                 **kwargs) -> None:
        if split not in ('train', 'test'):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        self.split, self.train_ratio, self.seed = split, train_ratio, seed
        super().__init__(**kwargs)

    def load_data_list(self) -> List[dict]:
        data_list = sorted(super().load_data_list(), key=lambda info: info['img_path'])
        is_train = train_ratio_split([info['gt_label'] for info in data_list],
                                     self.train_ratio, self.seed)
        keep = is_train if self.split == 'train' else ~is_train
        return [info for info, kept in zip(data_list, keep) if kept]
