"""Object embeddings of MutDet's pseudo-label boxes (paper section 3.1, "Preparation").

Each SAM box is enlarged, cut out of the ImageNet-normalised image with mmcv's ``RoIAlignRotated``,
passed through a frozen ImageNet backbone and average-pooled into one vector per box. The public
code (floatingstarZ/MutDet) does this inside a detector that only exists to save pickles: 800 px
patches resized to 1024, boxes enlarged 1.5x, 224 x 224 crops (sampling ratio 2, ``clockwise``),
ResNet-50 ``layer4`` and a 7 x 7 average pool (= global average pool) -> 2048-d, kept in float32.
Here the same steps are one small class; embeddings are returned as float16 to halve the storage.

Boxes are mmrotate ``le90`` boxes ``(cx, cy, w, h, theta)`` in pixels of the given image, with
mmrotate's continuous coordinates (pixel ``(row, col)`` covers ``[col, col + 1) x [row, row + 1)``;
``RoIAlignRotated`` is run with ``aligned=True`` to match). Their width axis points along
``(cos theta, sin theta)`` in image (x right, y down) coordinates, as in
:func:`mmrotate.structures.bbox.rbox2qbox`; mmcv's kernel needs ``clockwise=True`` for that
convention (mmrotate's own RoI extractors set it too), and the crop's columns then run along the
box's width, its rows along the height.
"""
import copy
import logging
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from mmcv.ops import RoIAlignRotated
from mmdet.registry import MODELS
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader
from torch import nn

#: The public code's backbone: torchvision's ImageNet ResNet-50, last stage only.
DEFAULT_BACKBONE = dict(
    type='mmdet.ResNet',
    depth=50,
    out_indices=(3, ),
    norm_eval=True,
    init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50'))


def crop_rotated_patches(image: torch.Tensor, boxes: torch.Tensor, crop_size: int,
                         enlarge: float = 1.0, sampling_ratio: int = 2) -> torch.Tensor:
    """Cut ``crop_size x crop_size`` patches of le90 boxes out of one ``(1, C, H, W)`` image.

    Each box's width and height are multiplied by ``enlarge`` (context around the object, 1.5 in
    the paper's pipeline) before ``RoIAlignRotated`` samples it; the patch's columns follow the
    box's width axis. Returns ``(N, C, crop_size, crop_size)``.
    """
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f'image must be a (1, C, H, W) tensor, got shape {tuple(image.shape)}')
    rois = boxes.to(image).reshape(-1, 5).clone()
    rois[:, 2:4] *= enlarge
    rois = torch.cat([rois.new_zeros(len(rois), 1), rois], dim=1)
    roi_align = RoIAlignRotated(
        output_size=(crop_size, crop_size),
        spatial_scale=1.0,
        sampling_ratio=sampling_ratio,
        aligned=True,
        clockwise=True)
    return roi_align(image.contiguous(), rois)  # mmcv's CPU kernel reads the raw memory


def resize_longer_side(image: np.ndarray, boxes: np.ndarray,
                       image_size: Optional[int]) -> Tuple[np.ndarray, np.ndarray]:
    """Resize ``image`` so its longer side is ``image_size`` (bilinear), and its boxes with it.

    The public code's ``RResize(img_scale=(1024, 1024))`` (keep ratio) does the same to its 800 px
    patches. Centres follow the actual per-axis factors of the rounded size, sides the nominal
    factor. ``image_size=None`` returns both unchanged.
    """
    if image_size is None:
        return image, boxes
    height, width = image.shape[:2]
    scale = image_size / max(height, width)
    new_width, new_height = int(width * scale + 0.5), int(height * scale + 0.5)
    if (new_width, new_height) == (width, height):
        return image, boxes
    resized = cv2.resize(image, (new_width, new_height), interpolation=cv2.INTER_LINEAR)
    scaled = boxes.copy()
    scaled[:, 0] *= new_width / width
    scaled[:, 1] *= new_height / height
    scaled[:, 2:4] *= scale
    return resized, scaled


def check_image(image: np.ndarray) -> None:
    """Raise a clear error unless ``image`` is an RGB uint8 ``H x W x 3`` array."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or \
            image.dtype != np.uint8:
        description = (f'shape {image.shape}, dtype {image.dtype}' if isinstance(
            image, np.ndarray) else type(image).__name__)
        raise ValueError(f'image must be an RGB uint8 array of shape (H, W, 3), got {description}')


def check_boxes(boxes: np.ndarray) -> np.ndarray:
    """``boxes`` as float32 ``(N, 5)``; a clear error for another shape or non-finite values."""
    boxes = np.asarray(boxes, dtype=np.float32)
    if boxes.ndim != 2 or boxes.shape[1] != 5:
        raise ValueError(f'boxes must have shape (N, 5) (cx, cy, w, h, theta), got {boxes.shape}')
    if not np.isfinite(boxes).all():
        bad = np.flatnonzero(~np.isfinite(boxes).all(axis=1))
        raise ValueError(f'boxes {bad[:10].tolist()} have non-finite values')
    return boxes


def has_pretrained_init(backbone: dict) -> bool:
    """Whether a backbone config loads pretrained weights (``init_cfg`` or ``pretrained``)."""
    init_cfgs = backbone.get('init_cfg') or []
    if isinstance(init_cfgs, dict):
        init_cfgs = [init_cfgs]
    return bool(backbone.get('pretrained')) or any(
        cfg.get('type') == 'Pretrained' for cfg in init_cfgs)


def backbone_state_dict(checkpoint: str) -> Dict[str, torch.Tensor]:
    """The weights in ``checkpoint`` (a path, or anything mmengine loads such as
    ``torchvision://resnet50``); a detector's or classifier's ``backbone.`` prefix is dropped."""
    if '://' not in checkpoint and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'backbone checkpoint {checkpoint} does not exist')
    loaded = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    state = loaded.get('state_dict', loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f'backbone checkpoint {checkpoint} holds no state dict')
    prefix = 'backbone.'
    if any(key.startswith(prefix) for key in state):
        state = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
    return state


def load_backbone_weights(backbone: nn.Module, checkpoint: str) -> None:
    """Load ``checkpoint`` into ``backbone``; every backbone weight must be there, same shape.

    Extra entries (a classifier's ``fc``, a detector's neck and heads) are ignored. A frozen
    embedding backbone with some random layers would give meaningless embeddings, so missing or
    mismatched weights are errors (naming the file and the keys), not warnings.
    """
    state = backbone_state_dict(checkpoint)
    expected = {key: value for key, value in backbone.state_dict().items()
                if not key.endswith('num_batches_tracked')}
    missing = [key for key in expected if key not in state]
    mismatched = [
        f'{key}: {tuple(state[key].shape)} in the file, {tuple(value.shape)} in the backbone'
        for key, value in expected.items() if key in state and state[key].shape != value.shape
    ]
    if missing or mismatched:
        raise ValueError(
            f'backbone checkpoint {checkpoint} does not fit the backbone: {len(missing)} missing '
            f'weights {missing[:5]}, {len(mismatched)} of another shape {mismatched[:5]}')
    backbone.load_state_dict({key: state[key] for key in expected}, strict=False)


def build_frozen_backbone(backbone: dict, init_checkpoint: Optional[str],
                          device: str) -> nn.Module:
    """Build ``backbone`` through mmdet's ``MODELS`` (any registered scope, e.g. ``mmdet.``,
    ``mmpretrain.``), initialise it, freeze every parameter and put it in eval mode.

    ``init_checkpoint`` (a file or URL) replaces the config's own ``init_cfg``; with neither, the
    weights are random and a warning says so.
    """
    cfg = copy.deepcopy(backbone)
    if init_checkpoint is not None:
        cfg.pop('init_cfg', None)
        cfg.pop('pretrained', None)
    elif not has_pretrained_init(cfg):
        print_log(f'BoxEmbedder: backbone {cfg.get("type")} has no pretrained weights (no init_cfg '
                  'of type Pretrained, no init_checkpoint): embeddings come from random weights',
                  logger='current', level=logging.WARNING)
    model = MODELS.build(cfg)
    if init_checkpoint is None:
        model.init_weights()
    else:
        load_backbone_weights(model, init_checkpoint)
    model.requires_grad_(False)
    model.eval()
    return model.to(device)


class BoxEmbedder:
    """One vector per rotated box: enlarged crop -> frozen backbone -> global average pool.

    Args:
        backbone: config of any backbone in mmdet's ``MODELS`` (scoped names such as
            ``mmpretrain.ResNet`` work too) whose last output is the feature map to pool.
            Default :data:`DEFAULT_BACKBONE` (ImageNet ResNet-50 stage 4, 2048-d, as the public
            code).
        crop_size: side of the square crop fed to the backbone (224 in the public code).
        enlarge: factor on each box's width and height before cropping (1.5, as the public code).
        image_size: the image's longer side is resized to this before cropping (1024: the public
            code resizes its 800 px DOTA patches to 1024); ``None`` keeps the image's size.
        mean, std: RGB normalisation (ImageNet, as the public code).
        batch_size: crops per backbone forward, which bounds the memory.
        device: torch device of the backbone.
        init_checkpoint: weights for the backbone (a file, or a URL such as
            ``torchvision://resnet50``); overrides the backbone config's ``init_cfg``.
    """

    def __init__(self,
                 backbone: Optional[dict] = None,
                 crop_size: int = 224,
                 enlarge: float = 1.5,
                 image_size: Optional[int] = 1024,
                 mean: Sequence[float] = (123.675, 116.28, 103.53),
                 std: Sequence[float] = (58.395, 57.12, 57.375),
                 batch_size: int = 64,
                 device: str = 'cpu',
                 init_checkpoint: Optional[str] = None) -> None:
        if crop_size < 1 or batch_size < 1 or enlarge <= 0:
            raise ValueError(f'crop_size ({crop_size}) and batch_size ({batch_size}) must be '
                             f'positive integers and enlarge ({enlarge}) positive')
        if image_size is not None and image_size < 1:
            raise ValueError(f'image_size must be a positive integer or None, got {image_size}')
        self.crop_size = crop_size
        self.enlarge = enlarge
        self.image_size = image_size
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.backbone = build_frozen_backbone(backbone or DEFAULT_BACKBONE, init_checkpoint,
                                              device)
        self._dim: Optional[int] = None

    @property
    def dim(self) -> int:
        """Length of one embedding: the channels of the backbone's last output."""
        if self._dim is None:
            probe = torch.zeros(1, 3, self.crop_size, self.crop_size, device=self.device)
            self._dim = self._pooled_features(probe).shape[1]
        return self._dim

    @torch.no_grad()
    def _pooled_features(self, crops: torch.Tensor) -> torch.Tensor:
        """Backbone's last feature map of ``crops``, averaged over space: ``(n, dim)``."""
        return self.backbone(crops)[-1].mean(dim=(2, 3))

    def _normalised_image(self, image: np.ndarray) -> torch.Tensor:
        """RGB uint8 ``H x W x 3`` -> normalised float32 ``(1, 3, H, W)`` on the device."""
        tensor = torch.from_numpy(np.ascontiguousarray(image)).to(self.device)
        tensor = tensor.permute(2, 0, 1)[None].float()
        return (tensor - self.mean) / self.std

    @torch.no_grad()
    def embed(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Embeddings ``(N, dim)`` float16 of the le90 pixel ``boxes`` ``(N, 5)`` of the RGB uint8
        ``image`` (``H x W x 3``), in the order of the boxes."""
        check_image(image)
        boxes = check_boxes(boxes)
        if len(boxes) == 0:
            return np.zeros((0, self.dim), dtype=np.float16)
        image, boxes = resize_longer_side(image, boxes, self.image_size)
        normalised = self._normalised_image(image)
        rois = torch.from_numpy(boxes).to(self.device)
        embeddings: List[torch.Tensor] = []
        for start in range(0, len(rois), self.batch_size):
            crops = crop_rotated_patches(normalised, rois[start:start + self.batch_size],
                                         self.crop_size, self.enlarge)
            embeddings.append(self._pooled_features(crops))
        result = torch.cat(embeddings).cpu().numpy().astype(np.float16)
        self._dim = result.shape[1]
        return result
