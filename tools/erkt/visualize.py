"""Grad-CAM (Figure 10) and t-SNE (Figures 11-12) figures of a trained ERKT-Net student.

    python tools/erkt/visualize.py gradcam CONFIG CHECKPOINT --out gradcam.png [--num-images 10]
    python tools/erkt/visualize.py tsne CONFIG CHECKPOINT --out tsne.png [--max-images 2000]

CONFIG is a distiller config (its student is used, the teacher is not loaded) or a classifier
config; images come from its test split through the test pipeline. Grad-CAM shows the first images
of the split class by class, originals above their class activation maps for the
predicted class; t-SNE embeds the pooled features (the neck's output) coloured by true class.
"""
import argparse
import sys
from typing import List

import numpy as np
import torch
from mmengine.config import DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import ifkd_mm  # noqa: F401  registers the plugin's modules
from ifkd_mm.classification.analysis import grad_cam, load_trained_classifier, tsne


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Grad-CAM and t-SNE figures of a classifier')
    parser.add_argument('kind', choices=['gradcam', 'tsne'])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', required=True, help='output PNG')
    parser.add_argument('--num-images', type=int, default=10, help='Grad-CAM: images shown')
    parser.add_argument('--max-images', type=int, default=2000, help='t-SNE: images embedded')
    parser.add_argument('--perplexity', type=float, default=30.0)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def batches(cfg):
    """The test split, batch by batch, as raw data dicts."""
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    return Runner.build_dataloader(cfg.test_dataloader)


def to_rgb_image(img: torch.Tensor) -> np.ndarray:
    """``(3, H, W)`` uint8 BGR (as loaded) to ``(H, W, 3)`` RGB in [0, 1]."""
    return img.flip(0).permute(1, 2, 0).float().numpy() / 255.0


def gradcam_figure(model, cfg, out: str, num_images: int) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    loader = batches(cfg)
    classes: List[str] = list(loader.dataset.metainfo['classes'])
    per_class = -(-num_images // len(classes))
    by_class: List[list] = [[] for _ in classes]
    for data in loader:
        for img, sample in zip(data['inputs'], data['data_samples']):
            if len(by_class[int(sample.gt_label)]) < per_class:
                by_class[int(sample.gt_label)].append((img, sample))
    picked = [group[k] for k in range(per_class) for group in by_class
              if k < len(group)][:num_images]
    data = model.data_preprocessor(
        dict(inputs=[p[0] for p in picked], data_samples=[p[1] for p in picked]), False)
    maps, logits = grad_cam(model, data['inputs'])
    preds = logits.argmax(dim=1)
    heat = plt.get_cmap('jet')
    fig, axes = plt.subplots(2, len(picked), figsize=(2 * len(picked), 4.4), squeeze=False)
    for k, (img, sample) in enumerate(picked):
        rgb = to_rgb_image(img)
        cam = torch.nn.functional.interpolate(maps[k][None, None], size=rgb.shape[:2],
                                              mode='bilinear', align_corners=False)[0, 0]
        overlay = 0.5 * rgb + 0.5 * heat(cam.numpy())[..., :3]
        axes[0, k].imshow(rgb)
        axes[0, k].set_title(classes[int(sample.gt_label)], fontsize=8)
        axes[1, k].imshow(overlay)
        axes[1, k].set_title(f'pred: {classes[int(preds[k])]}', fontsize=8)
        for ax in axes[:, k]:
            ax.axis('off')
    fig.tight_layout()
    fig.savefig(out, dpi=150)
    plt.close(fig)


@torch.no_grad()
def tsne_figure(model, cfg, out: str, max_images: int, perplexity: float) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    feats, labels = [], []
    loader = batches(cfg)
    for data in loader:
        data = model.data_preprocessor(data, False)
        feats.append(model.extract_feat(data['inputs'], stage='neck')[-1].flatten(1))
        labels.append(torch.cat([s.gt_label for s in data['data_samples']]))
        if sum(len(f) for f in feats) >= max_images:
            break
    x = torch.cat(feats)[:max_images].numpy()
    y = torch.cat(labels)[:max_images].numpy()
    embedding = tsne(x, perplexity=perplexity)
    classes = list(loader.dataset.metainfo['classes'])
    fig, ax = plt.subplots(figsize=(7, 6))
    colours = plt.get_cmap('tab20' if len(classes) > 10 else 'tab10')
    for c, name in enumerate(classes):
        keep = y == c
        ax.scatter(embedding[keep, 0], embedding[keep, 1], s=8, color=colours(c % colours.N),
                   label=name)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f't-SNE of the pooled features ({len(y)} test images)')
    ax.legend(fontsize=6, markerscale=2, ncol=1 + len(classes) // 25, loc='best')
    fig.tight_layout()
    fig.savefig(out, dpi=150)
    plt.close(fig)


def main(argv=None) -> int:
    args = parse_args(argv)
    model, cfg = load_trained_classifier(args.config, args.checkpoint, args.cfg_options)
    if args.kind == 'gradcam':
        gradcam_figure(model, cfg, args.out, args.num_images)
    else:
        tsne_figure(model, cfg, args.out, args.max_images, args.perplexity)
    print(f'{args.kind} figure saved to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
