"""The variance-suppression module (VSM, section 3.2, Table 1) as mmpretrain pipeline transforms.

The VSM is a sequence of gated functional units (GFU, eq. 1): each applies its function with its
operation probability and otherwise passes the image through unchanged (the shortcut). Eight
units act on single images and are :class:`GFU` transforms in the training pipeline; the ninth,
CutMix, mixes images of a batch and is mmpretrain's batch augmentation
``data_preprocessor.batch_augments`` (``CutMix``, applied with probability 1.0), so teacher and
student are fed the same augmented batch.

The functions are torchvision's (the paper: "selected from the PyTorch libraries"), with
torchvision's default parameters where Table 1 says "default". Interpretations:

* ``RandomErasing`` fills its rectangle with the data preprocessor's mean colour by default
  (``params=dict(value=...)``, RGB, 0-255; :func:`random_erasing`). Table 1 says "default", and
  torchvision's usual place for ``RandomErasing`` is after ``Normalize``, where its default
  ``value=0`` *is* the mean colour. Here the unit acts on the uint8 image before normalisation,
  where 0 would be black (about -2.1 after normalisation): patches the teachers never saw, which
  corrupt their targets (on the demo's training images the teacher ensemble's top-1 is 100 %
  clean, 70 % under the VSM with black patches and 82 % with mean-colour ones; 56 % and 68 %
  with CutMix). ``value=0`` still gives black.
* ``RandomResizedCrop(176)`` returns a 176 px crop; the pipeline resizes every image back to the
  fixed training resolution afterwards (the paper keeps 256 px for training and testing), so this
  unit zooms into a random region at reduced detail.
"""
import functools
from typing import Callable, Dict, Optional, Sequence, Union

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from torchvision.transforms import v2

from ..registry import CLS_TRANSFORMS

#: The mean colour (RGB, 0-255) of the ImageNet ``ClsDataPreprocessor`` of every ERKT-Net config:
#: the default fill of ``RandomErasing``.
IMAGENET_MEAN_RGB = (123.675, 116.28, 103.53)


def random_erasing(value: Union[float, Sequence[float]] = IMAGENET_MEAN_RGB,
                   **params) -> v2.RandomErasing:
    """torchvision's ``RandomErasing`` (always applied) for uint8 RGB images, filling with
    ``value`` (one number or one per RGB channel, 0-255), rounded to the nearest integer.

    The default is the data preprocessor's mean, so that an erased pixel normalises to 0 (up to
    the uint8 rounding, at most ``0.5 / std``, below 0.01), as ``value=0`` after ``Normalize`` in
    torchvision's usual order. torchvision would truncate a float fill on a uint8 image; its
    ``'random'`` fill (normal noise) has no meaning before normalisation and is refused.
    """
    if isinstance(value, str):
        raise ValueError(f'RandomErasing acts on uint8 images before normalisation: value must '
                         f'be a number or one per channel (0-255), got {value!r}')
    values = [float(value)] if isinstance(value, (int, float)) else [float(v) for v in value]
    if len(values) not in (1, 3) or not all(0 <= v <= 255 for v in values):
        raise ValueError(f'RandomErasing value must be one or three numbers in [0, 255], got '
                         f'{value!r}')
    return v2.RandomErasing(p=1.0, value=[float(round(v)) for v in values], **params)


#: Table 1's functions by name: each builds a callable that always applies the function to an
#: RGB uint8 ``(3, H, W)`` tensor (the GFU decides whether it runs).
VSM_FUNCTIONS: Dict[str, Callable[..., Callable[[torch.Tensor], torch.Tensor]]] = {
    'ColorJitter': v2.ColorJitter,
    'RandomRotation': v2.RandomRotation,
    'HorizontalFlip': functools.partial(v2.RandomHorizontalFlip, p=1.0),
    'VerticalFlip': functools.partial(v2.RandomVerticalFlip, p=1.0),
    'Grayscale': functools.partial(v2.RandomGrayscale, p=1.0),
    'AutoContrast': functools.partial(v2.RandomAutocontrast, p=1.0),
    'RandomErasing': random_erasing,
    'RandomResizedCrop': v2.RandomResizedCrop,
}

#: The key of the results dict listing the units that fired on a sample, in order.
FIRED_KEY = 'vsm_fired'


@CLS_TRANSFORMS.register_module()
class GFU(BaseTransform):
    """A gated functional unit (eq. 1): ``y = f(x)`` with probability ``prob``, else ``y = x``.

    Args:
        function: a name in :data:`VSM_FUNCTIONS` (Table 1's "DA technique").
        prob: the operation probability (Table 1).
        params: keyword arguments of the torchvision function (Table 1's "parameter settings").

    Reads ``results['img']`` (``(H, W, 3)`` uint8, BGR as loaded by ``LoadImageFromFile``),
    updates it and ``img_shape``, and appends ``function`` to ``results['vsm_fired']`` when the
    unit fires. The gate draws from numpy's RNG, the function from torch's (both seeded by the
    runner's ``randomness`` and per dataloader worker).
    """

    def __init__(self, function: str, prob: float, params: Optional[dict] = None) -> None:
        if function not in VSM_FUNCTIONS:
            raise KeyError(f'unknown VSM function {function!r}; known: {sorted(VSM_FUNCTIONS)}')
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.function, self.prob, self.params = function, prob, dict(params or {})
        self.apply = VSM_FUNCTIONS[function](**self.params)

    def transform(self, results: dict) -> dict:
        fired = results.setdefault(FIRED_KEY, [])
        if not np.random.rand() < self.prob:
            return results
        img = results['img']
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise TypeError(f'GFU({self.function}) needs an (H, W, 3) uint8 image, got '
                            f'{img.dtype} {img.shape}')
        rgb = torch.from_numpy(np.ascontiguousarray(img[..., ::-1].transpose(2, 0, 1)))
        out = self.apply(rgb).numpy().transpose(1, 2, 0)[..., ::-1]
        results['img'] = np.ascontiguousarray(out)
        results['img_shape'] = results['img'].shape[:2]
        fired.append(self.function)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(function={self.function!r}, prob={self.prob}, ' \
               f'params={self.params})'
