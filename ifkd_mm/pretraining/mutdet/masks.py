"""SAM automatic masks for MutDet's pseudo-labels (MutDet section 3.1, "Preparation").

The paper generates boxes with SAM's automatic mask generator on a 64 x 64 point grid with box
NMS 0.8 (preset ``'paper'``, the default); the public code runs ViT-H with the library defaults,
a 32 x 32 grid and NMS 0.7 (preset ``'public'``). SAM ViT-H / ViT-L / ViT-B come from
``segment_anything``, MobileSAM (``vit_t``, about 2 s per image on one CPU core) from
``mobile_sam``; the model is built on first use, from an official checkpoint (a plain state dict:
``sam_vit_h_4b8939.pth``, ``sam_vit_l_0b3195.pth``, ``sam_vit_b_01ec64.pth``, ``mobile_sam.pt``).
"""
import inspect
import logging
import os.path as osp
import warnings
from types import ModuleType
from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import torch
from mmengine.logging import print_log
from torch import Tensor, nn

SAM_VARIANTS = ('vit_h', 'vit_l', 'vit_b', 'vit_t')
MASK_PRESETS = {
    'paper': dict(points_per_side=64, box_nms_thresh=0.8),
    'public': dict(points_per_side=32, box_nms_thresh=0.7),
}
# Image-encoder signatures of the official checkpoints (segment_anything/build_sam.py): the ViT
# patch embedding's output width per variant, and a key only MobileSAM's TinyViT encoder has.
VIT_PATCH_EMBED_KEY = 'image_encoder.patch_embed.proj.weight'
VIT_WIDTHS = {1280: 'vit_h', 1024: 'vit_l', 768: 'vit_b'}
TINYVIT_KEY = 'image_encoder.patch_embed.seq.0.c.weight'
# generate() returns boolean masks, so the library's output format is not a setting.
FIXED_GENERATOR_ARGUMENTS = ('self', 'model', 'output_mode')


def sam_library(variant: str) -> ModuleType:
    """The package that builds ``variant``: ``mobile_sam`` for vit_t, else ``segment_anything``."""
    if variant not in SAM_VARIANTS:
        raise ValueError(f'unknown SAM variant {variant!r}; choose one of {SAM_VARIANTS}')
    if variant != 'vit_t':
        import segment_anything
        return segment_anything
    with warnings.catch_warnings():
        # mobile_sam re-registers timm's TinyViT models and uses timm's deprecated import paths.
        warnings.filterwarnings('ignore', message='Overwriting tiny_vit', category=UserWarning)
        warnings.filterwarnings('ignore', category=FutureWarning, module='timm')
        import mobile_sam
    return mobile_sam


def guess_sam_variant(state_dict: Mapping[str, Tensor]) -> Optional[str]:
    """The SAM variant whose image encoder a state dict holds, None if it is not recognised."""
    if TINYVIT_KEY in state_dict:
        return 'vit_t'
    patch_embed = state_dict.get(VIT_PATCH_EMBED_KEY)
    return None if patch_embed is None else VIT_WIDTHS.get(patch_embed.shape[0])


def load_sam_state_dict(checkpoint: str) -> Dict[str, Tensor]:
    """Read a SAM / MobileSAM state dict, naming the file in every error."""
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'SAM checkpoint {checkpoint!r} not found')
    try:
        state_dict = torch.load(checkpoint, map_location='cpu', weights_only=True)
    except Exception as error:
        raise ValueError(f'cannot read SAM checkpoint {checkpoint}: {error}') from error
    if not isinstance(state_dict, Mapping) or not all(
            isinstance(value, Tensor) for value in state_dict.values()):
        raise ValueError(f'SAM checkpoint {checkpoint} is not a state dict of tensors, as the '
                         'official SAM and MobileSAM checkpoints are')
    return dict(state_dict)


def describe_mismatch(expected: Mapping[str, Tensor], found: Mapping[str, Tensor]) -> str:
    """Which keys a state dict lacks, has in excess, or holds with another shape; '' if none."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    reshaped = [
        f'{key} {tuple(found[key].shape)} instead of {tuple(expected[key].shape)}'
        for key in sorted(set(expected) & set(found)) if found[key].shape != expected[key].shape
    ]
    groups = (('missing keys', missing), ('unexpected keys', unexpected),
              ('shape mismatches', reshaped))
    return '; '.join(f'{len(items)} {what} (e.g. {", ".join(items[:3])})'
                     for what, items in groups if items)


def build_sam(variant: str, checkpoint: Optional[str], device: str = 'cpu') -> nn.Module:
    """The SAM ``variant`` (eval mode, frozen) with ``checkpoint``'s weights, random if None."""
    library = sam_library(variant)
    state_dict = None
    if checkpoint is None:
        print_log(f'SAM {variant}: no checkpoint given, the weights are random (for tests and '
                  'demos only: the masks mean nothing)', logger='current', level=logging.WARNING)
    else:
        state_dict = load_sam_state_dict(checkpoint)
        found = guess_sam_variant(state_dict)
        if found is not None and found != variant:
            raise ValueError(f'SAM checkpoint {checkpoint} holds {found} weights (its image '
                             f'encoder), not {variant}: choose the SAM variant {found!r} or a '
                             f'{variant} checkpoint')
    model = library.sam_model_registry[variant]()
    if state_dict is not None:
        mismatch = describe_mismatch(model.state_dict(), state_dict)
        if mismatch:
            raise ValueError(f'SAM checkpoint {checkpoint} does not fit the {variant} '
                             f'architecture: {mismatch}')
        model.load_state_dict(state_dict)
    model.eval().requires_grad_(False)
    return model.to(device)


def generator_arguments(generator_cls: type, preset: str,
                        overrides: Mapping[str, Any]) -> Dict[str, Any]:
    """Each argument of the library's ``SamAutomaticMaskGenerator``: default < preset < override."""
    if preset not in MASK_PRESETS:
        raise ValueError(f'unknown mask preset {preset!r}; choose one of {sorted(MASK_PRESETS)}')
    parameters = inspect.signature(generator_cls.__init__).parameters
    arguments = {name: parameter.default for name, parameter in parameters.items()
                 if name not in FIXED_GENERATOR_ARGUMENTS}
    unknown = sorted(set(overrides) - set(arguments))
    if unknown:
        raise ValueError(f'unknown mask generator settings {unknown}; valid: {sorted(arguments)}')
    arguments.update(MASK_PRESETS[preset])
    arguments.update(overrides)
    return arguments


def check_rgb_image(image: np.ndarray) -> None:
    """Raise a ValueError unless ``image`` is an RGB uint8 (H, W, 3) array."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
            or image.shape[2] != 3:
        description = (f'{image.dtype} array of shape {image.shape}'
                       if isinstance(image, np.ndarray) else type(image).__name__)
        raise ValueError(f'MaskGenerator.generate takes an RGB uint8 (H, W, 3) image, got a '
                         f'{description}')


class MaskGenerator:
    """SAM's automatic mask generator with MutDet's settings, its model built on first use.

    Args:
        variant: one of :data:`SAM_VARIANTS`.
        checkpoint: the variant's official weights; None builds random weights (tests, demos).
        preset: ``'paper'`` (64 x 64 points, box NMS 0.8) or ``'public'`` (32 x 32, 0.7).
        device: where the model runs.
        **overrides: any other argument of the library's ``SamAutomaticMaskGenerator``
            (``pred_iou_thresh``, ``stability_score_thresh``, ``points_per_batch``,
            ``min_mask_region_area``, ...); they win over the preset.
    """

    def __init__(self,
                 variant: str = 'vit_t',
                 checkpoint: Optional[str] = None,
                 preset: str = 'paper',
                 device: str = 'cpu',
                 **overrides: Any) -> None:
        library = sam_library(variant)
        if checkpoint is not None and not osp.isfile(checkpoint):
            raise FileNotFoundError(f'SAM checkpoint {checkpoint!r} not found')
        self.variant = variant
        self.checkpoint = checkpoint
        self.preset = preset
        self.device = device
        self._generator_cls = library.SamAutomaticMaskGenerator
        self._arguments = generator_arguments(self._generator_cls, preset, overrides)
        self._generator = None

    @property
    def settings(self) -> Dict[str, Any]:
        """The model and every generator setting in use (library defaults filled in), for logs."""
        return dict(variant=self.variant, checkpoint=self.checkpoint, preset=self.preset,
                    device=self.device, **self._arguments)

    def generate(self, image: np.ndarray) -> List[np.ndarray]:
        """Boolean (H, W) masks of an RGB uint8 (H, W, 3) image.

        In the library's order: after its box NMS, best predicted IoU first (per crop layer).
        """
        check_rgb_image(image)
        if self._generator is None:
            model = build_sam(self.variant, self.checkpoint, self.device)
            self._generator = self._generator_cls(model, **self._arguments)
        records = self._generator.generate(image)
        return [record['segmentation'].astype(bool, copy=False) for record in records]
