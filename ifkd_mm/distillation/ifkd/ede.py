"""External disturbance enhancement (EDE), IFKD section 3.1, eq. 1-2.

``P = sigmoid(MobileSAM(x))`` on the batch canvas, resized bilinearly to each level's H x W, is
added to the teacher's features (broadcast over channels): ``F_T + P``.

``MobileSAM(x)`` is, by default (``source='mask'``), the prompt-free mask decoder's low-resolution
mask logits: the prompt encoder is called with no points, boxes or masks and the decoder's
single-mask output (``multimask_output=False``, its first mask token) is taken. With
``source='embedding'`` it is the channel mean of the 256-channel image embedding (64 x 64).
Either map is taken back to the image's coordinates with MobileSAM's own ``postprocess_masks``
(undo the pad to 1024 and the long-side resize), passed through the sigmoid and put on the padded
batch canvas (0 on the padding).

MobileSAM (``vit_t``) is built lazily on first use from ``checkpoint``, frozen, in eval mode and
kept outside the module tree (not in ``state_dict``, the optimizer or ``.to()``; it is moved to
the input's device when used). It costs about 1.8 s per image on one CPU core, so
``mode='cached'`` reads priors written offline by ``tools/ifkd/precompute_sam_prior.py`` and
loaded by the ``LoadSAMPrior`` transform (``data_sample.gt_sem_seg``, uint8 ``sigmoid * 255``,
moved by the pipeline's resize/flip with the image).
"""
import os.path as osp
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from ...registry import register_model
from ..base import DistillBatch

SOURCES = ('mask', 'embedding')
MODES = ('online', 'cached')


def enhance(feature: Tensor, prior: Tensor) -> Tensor:
    """``F_T + Resize(P)`` (eq. 1-2): ``prior`` (B, 1, H, W) in [0, 1] resized to the level."""
    resized = F.interpolate(prior.to(feature), size=feature.shape[-2:], mode='bilinear',
                            align_corners=False)
    return feature + resized


def build_mobile_sam(checkpoint: Optional[str]) -> nn.Module:
    """MobileSAM ``vit_t`` from ``checkpoint`` (a state dict), frozen and in eval mode."""
    if not checkpoint or not osp.isfile(checkpoint):
        raise FileNotFoundError(
            f'ExternalDisturbanceEnhancement.checkpoint: no MobileSAM checkpoint at {checkpoint!r}'
            ' (download mobile_sam.pt, or use mode="cached" with precomputed priors)')
    from mobile_sam import sam_model_registry

    sam = sam_model_registry['vit_t'](checkpoint=checkpoint)
    sam.eval()
    sam.requires_grad_(False)
    return sam


@torch.no_grad()
def mobile_sam_logits(sam: nn.Module, images: Sequence[Tensor],
                      source: str = 'mask') -> List[Tensor]:
    """``MobileSAM(x)`` of each RGB image (3, h, w) in [0, 255], as (1, h, w) logits.

    The images go through MobileSAM's own preprocessing (long side resized to 1024, its pixel
    mean/std, padded to 1024 x 1024) in one batch; the output map is taken back to (h, w).
    """
    from mobile_sam.utils.transforms import ResizeLongestSide

    if source not in SOURCES:
        raise ValueError(f'source must be one of {SOURCES}, got {source!r}')
    device = sam.device
    resize = ResizeLongestSide(sam.image_encoder.img_size)
    inputs = [resize.apply_image_torch(image[None].float().to(device))[0] for image in images]
    embeddings = sam.image_encoder(torch.stack([sam.preprocess(x) for x in inputs]))
    logits = []
    for image, x, embedding in zip(images, inputs, embeddings):
        if source == 'mask':
            sparse, dense = sam.prompt_encoder(points=None, boxes=None, masks=None)
            out, _ = sam.mask_decoder(
                image_embeddings=embedding[None], image_pe=sam.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                multimask_output=False)
        else:
            out = embedding.mean(dim=0, keepdim=True)[None]
        out = sam.postprocess_masks(out, input_size=tuple(x.shape[-2:]),
                                    original_size=tuple(image.shape[-2:]))
        logits.append(out[0])
    return logits


def place_on_canvas(maps: Sequence[Tensor], shapes: Sequence[Sequence[int]],
                    canvas: Sequence[int]) -> Tensor:
    """(B, 1, H, W) canvas with each (1, h', w') map's top-left ``shapes[i]`` crop, 0 elsewhere."""
    out = maps[0].new_zeros(len(maps), 1, *canvas, dtype=torch.float32)
    for i, (m, (h, w)) in enumerate(zip(maps, shapes)):
        if m.shape[-2] < h or m.shape[-1] < w:
            raise ValueError(f'EDE prior of image {i} is {tuple(m.shape[-2:])}, smaller than the '
                             f'image {(h, w)}')
        out[i, :, :h, :w] = m[:, :h, :w].float()
    return out


@register_model
class ExternalDisturbanceEnhancement(BaseModule):
    """Add the MobileSAM prior to the teacher's features (IFKD eq. 1-2).

    Args:
        checkpoint: MobileSAM ``vit_t`` weights (``mobile_sam.pt``), needed in online mode.
        source: ``'mask'`` (prompt-free mask logits) or ``'embedding'`` (channel mean of the
            image embedding); see the module docstring.
        mode: ``'online'`` (run MobileSAM on the batch) or ``'cached'`` (priors from the data
            pipeline's ``LoadSAMPrior``).
    """

    def __init__(self, checkpoint: Optional[str] = None, source: str = 'mask',
                 mode: str = 'online', init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if source not in SOURCES:
            raise ValueError(f'EDE source must be one of {SOURCES}, got {source!r}')
        if mode not in MODES:
            raise ValueError(f'EDE mode must be one of {MODES}, got {mode!r}')
        self.checkpoint = checkpoint
        self.source = source
        self.mode = mode
        self._sam: List[nn.Module] = []  # a plain list: never a child module

    def mobile_sam(self, device: torch.device) -> nn.Module:
        """The frozen MobileSAM, built on first use and moved to ``device``."""
        if not self._sam:
            self._sam.append(build_mobile_sam(self.checkpoint))
        return self._sam[0].to(device)

    def prior(self, batch: DistillBatch) -> Tensor:
        """``P = sigmoid(MobileSAM(x))`` on the padded batch canvas, (B, 1, H, W) in [0, 1]."""
        shapes = [tuple(meta['img_shape'][:2]) for meta in batch.img_metas]
        canvas = tuple(batch.inputs.shape[-2:])
        if self.mode == 'cached':
            maps = []
            for i, sample in enumerate(batch.data_samples):
                if 'gt_sem_seg' not in sample:
                    raise KeyError(f'EDE mode="cached": data sample {i} has no gt_sem_seg; add '
                                   "dict(type='LoadSAMPrior', prior_dir=...) to the pipeline")
                maps.append(sample.gt_sem_seg.sem_seg.to(batch.inputs.device).float() / 255)
            return place_on_canvas(maps, shapes, canvas)
        sam = self.mobile_sam(batch.inputs.device)
        pixels = batch.pixel_images()
        images = [pixels[i, :, :h, :w] for i, (h, w) in enumerate(shapes)]
        maps = [logits.sigmoid() for logits in mobile_sam_logits(sam, images, self.source)]
        return place_on_canvas(maps, shapes, canvas)

    def forward(self, features: Sequence[Tensor], batch: DistillBatch) -> List[Tensor]:
        """``F_T + P`` per level; ``P`` is computed once per batch (kept in ``batch.cache``)."""
        key = f'ifkd_sam_prior_{self.mode}_{self.source}'
        if key not in batch.cache:
            batch.cache[key] = self.prior(batch)
        return [enhance(f, batch.cache[key]) for f in features]
