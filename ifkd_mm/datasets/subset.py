"""A seeded random fraction of a dataset, for fine-tuning with k % of the data (MutDet Table 5).

The paper fine-tunes on 10, 25, 50 and 100 % of DIOR-R without saying how the subsets are drawn;
here a fraction of the images is drawn uniformly without replacement by a seeded generator, so
that every run and machine trains on the same images.
"""
import copy
import logging
import math
from typing import List, Union

import numpy as np
from mmengine.dataset import BaseDataset, force_full_init
from mmengine.logging import print_log
from mmengine.registry import DATASETS as ROOT_DATASETS

from ..registry import DATASETS, ROTATED_DATASETS


def check_fraction(fraction: float) -> None:
    """Refuse a ``fraction`` that is not a number in (0, 1]."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or \
            not 0 < fraction <= 1:
        raise ValueError(f'fraction must be a number in (0, 1], got {fraction!r}')


def subset_size(num_samples: int, fraction: float) -> int:
    """``fraction`` of ``num_samples`` rounded half up, at least 1."""
    check_fraction(fraction)
    if num_samples < 1:
        raise ValueError(f'cannot take a fraction of an empty dataset (fraction {fraction})')
    return max(1, math.floor(num_samples * fraction + 0.5))


def subset_indices(num_samples: int, fraction: float, seed: int) -> List[int]:
    """The sorted indices of a seeded uniform draw without replacement of
    :func:`subset_size` samples (numpy's PCG64 ``default_rng(seed).permutation``)."""
    size = subset_size(num_samples, fraction)
    return sorted(int(i) for i in np.random.default_rng(seed).permutation(num_samples)[:size])


@DATASETS.register_module()
@ROTATED_DATASETS.register_module()
class RandomSubsetDataset:
    """The samples of ``dataset`` at :func:`subset_indices`, in their original order.

    A wrapper like mmengine's ``ClassBalancedDataset``: ``dataset`` is a dataset or its config
    (built in the current scope), its ``metainfo`` is passed through, and with ``lazy_init`` the
    wrapped annotations are loaded (and the subset drawn) on first use.
    """

    def __init__(self, dataset: Union[BaseDataset, dict], fraction: float, seed: int = 0,
                 lazy_init: bool = False):
        check_fraction(fraction)
        if isinstance(dataset, dict):
            dataset = ROOT_DATASETS.build(dataset)
        if not all(hasattr(dataset, name) for name in ('metainfo', 'full_init', '__getitem__')):
            raise TypeError(f'dataset must be a dataset or its config, got {type(dataset)}')
        self.dataset = dataset
        self.fraction = fraction
        self.seed = seed
        self._metainfo = dataset.metainfo
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        """The wrapped dataset's meta information (a copy)."""
        return copy.deepcopy(self._metainfo)

    def full_init(self) -> None:
        """Load the wrapped dataset and draw the subset."""
        if self._fully_initialized:
            return
        self.dataset.full_init()
        self.indices = subset_indices(len(self.dataset), self.fraction, self.seed)
        self._fully_initialized = True

    @force_full_init
    def get_subset_info(self) -> dict:
        """What was drawn: fraction, seed, size of the wrapped dataset and the kept indices."""
        return dict(fraction=self.fraction, seed=self.seed, num_wrapped=len(self.dataset),
                    indices=list(self.indices))

    @force_full_init
    def get_data_info(self, idx: int) -> dict:
        """The annotation of the ``idx``-th kept sample."""
        return self.dataset.get_data_info(self.indices[idx])

    def __getitem__(self, idx: int):
        if not self._fully_initialized:
            print_log('Please call `full_init` method manually to accelerate the speed.',
                      logger='current', level=logging.WARNING)
            self.full_init()
        return self.dataset[self.indices[idx]]

    @force_full_init
    def __len__(self) -> int:
        return len(self.indices)
