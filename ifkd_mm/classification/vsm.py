"""The variance-suppression module (VSM, section 3.2, Table 1) as mmpretrain pipeline transforms.

The VSM is a sequence of gated functional units (GFU, eq. 1): each applies its function with its
operation probability and otherwise passes the image through unchanged (the shortcut). Eight
units act on single images and are :class:`GFU` transforms in the training pipeline; the ninth,
CutMix, mixes images of a batch and is mmpretrain's batch augmentation
``data_preprocessor.batch_augments`` (``CutMix``, applied with probability 1.0), so teacher and
student are fed the same augmented batch.

The functions are torchvision's (the paper: "selected from the PyTorch libraries"), with
torchvision's default parameters where Table 1 says "default". Interpretations:

* ``RandomErasing`` acts on the uint8 image before normalisation and erases with 0 (black), as
  torchvision's default ``value=0`` does on an unnormalised tensor.
* ``RandomResizedCrop(176)`` returns a 176 px crop; the pipeline resizes every image back to the
  fixed training resolution afterwards (the paper keeps 256 px for training and testing), so this
  unit zooms into a random region at reduced detail.
"""
import functools
from typing import Callable, Dict, Optional

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from torchvision.transforms import v2

from ..registry import CLS_TRANSFORMS

#: Table 1's functions by name: each builds a callable that always applies the function to an
#: RGB uint8 ``(3, H, W)`` tensor (the GFU decides whether it runs).
VSM_FUNCTIONS: Dict[str, Callable[..., Callable[[torch.Tensor], torch.Tensor]]] = {
    'ColorJitter': v2.ColorJitter,
    'RandomRotation': v2.RandomRotation,
    'HorizontalFlip': functools.partial(v2.RandomHorizontalFlip, p=1.0),
    'VerticalFlip': functools.partial(v2.RandomVerticalFlip, p=1.0),
    'Grayscale': functools.partial(v2.RandomGrayscale, p=1.0),
    'AutoContrast': functools.partial(v2.RandomAutocontrast, p=1.0),
    'RandomErasing': functools.partial(v2.RandomErasing, p=1.0),
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
