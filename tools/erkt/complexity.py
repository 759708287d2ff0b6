"""Parameters, FLOPs and inference time of classifiers, as in Table 8.

    python tools/erkt/complexity.py CONFIG [CONFIG ...] [--size 256] [--num-images 300]
                                    [--batch-size 30] [--device cpu]

Each CONFIG is a classifier config, a distiller config (its student) or a teacher-ensemble
config (all members together; their checkpoints are not needed: every model is measured with
random weights). FLOPs count one multiply-add as one FLOP (mmengine's ``FlopAnalyzer``, as
fvcore and the paper's 0.4 G for EfficientNet-B0 at 224 px); the time is for ``--num-images``
random images in batches (the paper: 6,300 NWPU45 images on an RTX 2060).
"""
import argparse
import os.path as osp
import sys
from typing import List

import torch
from mmengine.config import Config

import ifkd_mm  # noqa: F401  registers the plugin's modules
from ifkd_mm.classification import build_cls_model, classifier_config, combine
from ifkd_mm.classification.analysis import count_flops, count_parameters, inference_time


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Table 8: params, FLOPs, inference time')
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--size', type=int, default=256, help='square input side in pixels')
    parser.add_argument('--num-images', type=int, default=300)
    parser.add_argument('--batch-size', type=int, default=30)
    parser.add_argument('--device', default='cpu')
    return parser.parse_args(argv)


class Members(torch.nn.Module):
    """The ensemble's members with random weights, run one after the other (``log sum w p``)."""

    def __init__(self, members: List[torch.nn.Module], weights: List[float]) -> None:
        super().__init__()
        self.members, self.weights = torch.nn.ModuleList(members), weights

    def forward(self, inputs: torch.Tensor, mode: str = 'tensor') -> torch.Tensor:
        probs = torch.stack([m(inputs, mode='tensor').softmax(1) for m in self.members])
        return combine(probs, self.weights).log()


def build_for_measuring(path: str) -> torch.nn.Module:
    """The model to measure: classifier, distiller's student or the ensemble's members."""
    model_cfg = Config.fromfile(path).model
    if model_cfg.type == 'ERKTDistiller':
        return build_cls_model(classifier_config(model_cfg.student))
    if model_cfg.type == 'TeacherEnsemble':
        members = [build_cls_model(classifier_config(m['config'])) for m in model_cfg.members]
        return Members(members, [m['weight'] for m in model_cfg.members])
    return build_cls_model(classifier_config(path))


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_grad_enabled(False)
    rows = []
    for path in args.configs:
        model = build_for_measuring(path).to(args.device).eval()
        shape = (1, 3, args.size, args.size)
        seconds = inference_time(model, (args.size, args.size), args.num_images, args.batch_size)
        rows.append((osp.splitext(osp.basename(path))[0], count_parameters(model) / 1e6,
                     count_flops(model, shape) / 1e9, seconds))
    print(f'| Model | Params (M) | FLOPs (G) at {args.size} px | '
          f'time for {args.num_images} images (s, {args.device}) |')
    print('|---|---|---|---|')
    for name, params, flops, seconds in rows:
        print(f'| {name} | {params:.1f} | {flops:.2f} | {seconds:.2f} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
