"""Offline MobileSAM priors for IFKD's EDE (cached mode): file naming and the loading transform.

``tools/ifkd/precompute_sam_prior.py`` writes, for every image, an 8-bit PNG
``round(sigmoid(MobileSAM(x)) * 255)`` at the image's original resolution, named
:func:`prior_filename` of the image. :class:`LoadSAMPrior` loads it as ``results['gt_seg_map']``,
so that the geometric transforms move it with the image (mmdet's ``Resize`` and ``RandomCrop``
resize/crop it, ``RandomFlip`` flips it, mmrotate's ``RandomRotate`` rotates it) and
``PackDetInputs`` packs it as ``data_sample.gt_sem_seg.sem_seg`` (1, H, W), where the EDE module
reads it (0-255 -> [0, 1]; the batch padding of the data preprocessor gets 0). mmcv's ``Resize``
resizes segmentation maps with nearest-neighbour interpolation, which is what the prior gets.
Transforms that fill new area of a segmentation map with an *ignore label* would write a prior
of 1 there: give them 0 instead, e.g. ``Pad(..., pad_val=dict(img=0, seg=0))`` and mmrotate's
``RandomRotate(..., seg_ignore_label=0)``. The pipeline must not load a real semantic
segmentation map too (the key would clash).
"""
import os.path as osp

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform

from ..registry import ROTATED_TRANSFORMS, TRANSFORMS


def prior_filename(img_path: str) -> str:
    """The prior file name of an image: its base name with a ``.png`` suffix."""
    return osp.splitext(osp.basename(img_path))[0] + '.png'


@TRANSFORMS.register_module()
class LoadSAMPrior(BaseTransform):
    """Load the precomputed MobileSAM prior of ``results['img_path']`` into ``gt_seg_map``.

    Put it right after ``LoadImageFromFile``, before any geometric transform.

    Args:
        prior_dir: the folder ``tools/ifkd/precompute_sam_prior.py`` wrote.
    """

    def __init__(self, prior_dir: str) -> None:
        self.prior_dir = prior_dir

    def transform(self, results: dict) -> dict:
        path = osp.join(self.prior_dir, prior_filename(results['img_path']))
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'LoadSAMPrior: no prior {path} for {results["img_path"]}; write the priors with '
                'tools/ifkd/precompute_sam_prior.py')
        prior = mmcv.imread(path, flag='unchanged')
        if prior.ndim != 2 or prior.dtype != np.uint8:
            raise ValueError(f'LoadSAMPrior: {path} is not an 8-bit single-channel PNG')
        shape = results['img'].shape[:2]
        if prior.shape != shape:
            raise ValueError(f'LoadSAMPrior: prior {path} is {prior.shape[1]}x{prior.shape[0]} '
                             f'but the image is {shape[1]}x{shape[0]}: load the prior before '
                             f'any geometric transform, from a folder written for this dataset')
        results['gt_seg_map'] = prior
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(prior_dir={self.prior_dir!r})'


ROTATED_TRANSFORMS.register_module(module=LoadSAMPrior)
