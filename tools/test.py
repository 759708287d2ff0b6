"""Evaluate a checkpoint on a config's test set, with mmdetection's command line.

    python tools/test.py CONFIG [CHECKPOINT] [--work-dir DIR] [--out results.pkl]
                         [--show-dir DIR] [--cfg-options key=value ...] [--launcher pytorch]

Without CHECKPOINT the freshly initialised model is evaluated (a baseline to compare with).
The metrics are printed as one line each and written to ``<work-dir>/metrics.json``.
"""
import argparse
import json
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.dist import is_main_process
from mmengine.evaluator import DumpResults
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import ifkd_mm  # noqa: F401  registers the plugin's modules and the checkpoint compatibility
from ifkd_mm.engine import finish_distributed, prepare_cpu_distributed


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the evaluation metrics')
    parser.add_argument('--out', help='dump predictions to a pickle file (.pkl)')
    parser.add_argument('--show-dir', help='save drawn predictions under this folder of the '
                        'work dir')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_config(args: argparse.Namespace) -> Config:
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.checkpoint is not None and not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint} does not exist')
    cfg.load_from = args.checkpoint
    cfg.resume = False
    if args.show_dir:
        visualization = cfg.default_hooks.get('visualization')
        if visualization is None:
            raise KeyError('--show-dir needs default_hooks.visualization in the config')
        visualization.update(draw=True, test_out_dir=args.show_dir)
    return cfg


def main() -> None:
    args = parse_args()
    cfg = build_config(args)
    prepare_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl file, got {args.out}')
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
    if args.checkpoint is None:
        runner.logger.warning('no checkpoint given: evaluating the initialised weights')
        runner.model.init_weights()  # as training starts; seeded by the config's randomness
    metrics = runner.test()
    if is_main_process():
        with open(osp.join(cfg.work_dir, 'metrics.json'), 'w') as f:
            json.dump(metrics, f, indent=2, default=lambda v: v.tolist())
        if not metrics:
            print('no metrics: the model made no detection above its test_cfg.score_thr')
        for name, value in metrics.items():
            print(f'{name}: {value}')
    finish_distributed()


if __name__ == '__main__':
    main()
