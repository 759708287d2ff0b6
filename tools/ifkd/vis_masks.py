"""Visualise IFKD's EDE prior, FDR frequency split and HSM masks for one image.

    python tools/ifkd/vis_masks.py DISTILL_CONFIG IMAGE --out-dir DIR \
        [--sam-checkpoint mobile_sam.pt] [--student-checkpoint work_dirs/.../epoch_N.pth]

DISTILL_CONFIG is a ``DetectionDistiller`` config whose ``distill_losses`` hold an
``IFKDFeatureLoss``; the image goes through the config's test pipeline. ``--student-checkpoint``
is a checkpoint of that distillation run (student, adapters and FDR filters); without it the
student and adapters are as initialised. ``--sam-checkpoint`` switches EDE to online MobileSAM;
otherwise EDE's own mode is used (cached mode needs ``LoadSAMPrior`` in the train pipeline).
Writes, for the first image of the batch (feature maps shown as per-location channel L2 norm):
``ede_prior.png`` (image, prior, teacher level-0 energy before/after EDE, as in the paper's
figure 3), ``fdr_level{l}.png`` (teacher and adapted student: input, low/high frequency parts,
low part after M_FRS, FDR output, with M_FRS) and ``hsm_level{l}.png`` (teacher and student
energy, Euclidean feature difference, HSM mask, as in figure 4).
"""
import argparse
import copy
import os
import os.path as osp
import sys
from typing import List, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from ifkd_mm.distillation.base import DistillBatch  # noqa: E402
from ifkd_mm.distillation.ifkd.fdr import frs_mask, low_pass_window, split_frequencies  # noqa: E402
from ifkd_mm.distillation.ifkd.losses import IFKDFeatureLoss  # noqa: E402


def energy(feature: Tensor) -> Tensor:
    """Per-location channel L2 norm of image 0 of a (B, C, H, W) feature map, (H, W)."""
    return feature[0].float().norm(dim=0).cpu()


def save_grid(panels: Sequence[Sequence[tuple]], path: str, title: str) -> str:
    """Save rows of ``(name, HxW map or HxWx3 image)`` panels as one PNG; returns ``path``."""
    rows, cols = len(panels), max(len(row) for row in panels)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis('off')
    for r, row in enumerate(panels):
        for c, (name, value) in enumerate(row):
            value = value.detach().cpu().numpy() if isinstance(value, Tensor) else value
            shown = axes[r][c].imshow(value, cmap=None if value.ndim == 3 else 'jet')
            axes[r][c].set_title(name, fontsize=8)
            if value.ndim == 2:
                fig.colorbar(shown, ax=axes[r][c], fraction=0.046, pad=0.04)
    fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.02, right=0.95, bottom=0.02, top=0.85, wspace=0.35, hspace=0.3)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


@torch.no_grad()
def render_masks(feature_loss: IFKDFeatureLoss, teacher_neck: Sequence[Tensor],
                 student_neck: Sequence[Tensor], teacher_cls_scores: Sequence[Tensor],
                 batch: DistillBatch, out_dir: str) -> List[str]:
    """Write the EDE, FDR and HSM figures of image 0 into ``out_dir``; returns the PNG paths.

    Parts that are switched off in ``feature_loss`` are skipped. FDR uses its eval ratio.
    """
    os.makedirs(out_dir, exist_ok=True)
    was_training = feature_loss.training
    feature_loss.eval()
    teacher, student = list(teacher_neck), feature_loss.adapt(student_neck)
    h, w = batch.img_metas[0]['img_shape'][:2]
    image = batch.pixel_images()[0, :, :h, :w].permute(1, 2, 0).clamp(0, 255).byte()
    paths = []
    if feature_loss.ede is not None:
        prior = feature_loss.ede.prior(batch)
        enhanced = feature_loss.ede(teacher[:1], batch)[0]
        paths.append(save_grid(
            [[('image', image), ('EDE prior P', prior[0, 0, :h, :w]),
              ('teacher level 0', energy(teacher[0])), ('teacher + P', energy(enhanced))]],
            osp.join(out_dir, 'ede_prior.png'), 'EDE: P = sigmoid(MobileSAM(x)) (eq. 1-2)'))
        teacher = feature_loss.ede(teacher, batch)
    if feature_loss.fdr is not None:
        fdr = feature_loss.fdr
        frs = [frs_mask(score) for score in teacher_cls_scores]
        out_t, out_s = fdr(teacher, student, frs)
        for level, (t, s, m) in enumerate(zip(teacher, student, frs)):
            window = low_pass_window(*t.shape[-2:], fdr.ratio, device=t.device)
            rows = []
            for name, feat, out in (('teacher', t, out_t[level]), ('student', s, out_s[level])):
                low, high = split_frequencies(feat, window)
                rows.append([(f'{name} f', energy(feat)), ('low f_l', energy(low)),
                             ('high', energy(high)), ('f_l * M_FRS', energy(low * m)),
                             ('FDR(f)', energy(out)), ('M_FRS', m[0, 0])])
            paths.append(save_grid(rows, osp.join(out_dir, f'fdr_level{level}.png'),
                                   f'FDR level {level}, r = {fdr.ratio} (eq. 3-8)'))
    if feature_loss.hsm is not None:
        masks = feature_loss.hsm(list(teacher_neck), student)
        for level, (t, s, m) in enumerate(zip(teacher_neck, student, masks)):
            paths.append(save_grid(
                [[('teacher', energy(t)), ('adapted student', energy(s)),
                  ('|f_t - f_s|', energy(t - s)), ('HSM mask', m[0, 0])]],
                osp.join(out_dir, f'hsm_level{level}.png'),
                f'HSM level {level}, c = {feature_loss.hsm.c} (eq. 9-11)'))
    feature_loss.train(was_training)
    return paths


def test_pipeline(cfg, use_cached_prior: bool) -> list:
    """The config's test pipeline without annotations (plus LoadSAMPrior for cached EDE)."""
    pipeline = [step for step in copy.deepcopy(cfg.test_dataloader.dataset.pipeline)
                if step['type'] != 'LoadAnnotations']
    if use_cached_prior:
        loaders = [step for step in cfg.train_dataloader.dataset.pipeline
                   if step['type'] == 'LoadSAMPrior']
        if not loaders:
            raise ValueError('EDE is in cached mode but the train pipeline has no LoadSAMPrior: '
                             'pass --sam-checkpoint to run MobileSAM online')
        pipeline.insert(1, copy.deepcopy(loaders[0]))
    return pipeline


def main(argv: Sequence[str] = None) -> None:
    from mmengine.config import Config
    from mmengine.dataset import Compose, pseudo_collate
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.runner.checkpoint import load_checkpoint

    import ifkd_mm  # noqa: F401  (registers the modules)
    from ifkd_mm.distillation.distiller import dense_head, recording

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='a DetectionDistiller config with an IFKDFeatureLoss')
    parser.add_argument('image', help='the image to visualise')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--sam-checkpoint', help='MobileSAM weights: run EDE online')
    parser.add_argument('--student-checkpoint', help='a checkpoint of the distillation run')
    args = parser.parse_args(argv)

    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    losses = [loss for loss in cfg.model.get('distill_losses', [])
              if loss['type'] in ('IFKDFeatureLoss', 'mmdet.IFKDFeatureLoss')]
    if cfg.model.get('type') not in ('DetectionDistiller', 'mmdet.DetectionDistiller') \
            or not losses:
        raise ValueError(f'{args.config} is not a DetectionDistiller config with an '
                         'IFKDFeatureLoss')
    ede = losses[0].get('ede')
    if ede is not None and args.sam_checkpoint:
        ede.update(checkpoint=args.sam_checkpoint, mode='online')
    model = MODELS.build(cfg.model)
    if args.student_checkpoint:
        load_checkpoint(model, args.student_checkpoint, map_location='cpu', strict=False)
    model.eval()
    feature_loss = next(m for m in model.distill_losses if isinstance(m, IFKDFeatureLoss))

    cached = ede is not None and ede.get('mode', 'online') == 'cached'
    data = Compose(test_pipeline(cfg, cached))(dict(img_path=args.image, img_id=0))
    data = model.data_preprocessor(pseudo_collate([data]), False)
    inputs, samples = data['inputs'], data['data_samples']
    with torch.no_grad():
        student_out: dict = {}
        with recording(model.student, ('neck', ), student_out):
            model.student.extract_feat(inputs)
        teacher_out: dict = {}
        with recording(model.teacher, ('neck', 'cls_scores'), teacher_out):
            dense_head(model.teacher)(model.teacher.extract_feat(inputs))
    batch = DistillBatch(inputs=inputs, data_samples=samples, mean=model.data_preprocessor.mean,
                         std=model.data_preprocessor.std,
                         bgr_to_rgb=bool(getattr(model.data_preprocessor, '_channel_conversion',
                                                 False)))
    for path in render_masks(feature_loss, teacher_out['neck'], student_out['neck'],
                             teacher_out['cls_scores'], batch, args.out_dir):
        print(path)


if __name__ == '__main__':
    main()
