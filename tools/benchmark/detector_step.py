"""Time and size one training step of ARS-DETR against rotated RetinaNet at the same image size.

    python tools/benchmark/detector_step.py [--baseline-config CONFIG] [--ars-config CONFIG] \
        [--img-size 512] [--batch-size 2] [--steps 5] [--warmup 2] [--profile-steps 2] \
        [--device cpu|cuda] [--threads N] [--data-root DIR] [--out results.json]

Two detectors, by default the DOTA configs of the two families at ResNet-50:

* the baseline, rotated RetinaNet R50 (``--baseline-config``, default KD-RNet's teacher
  :data:`BASELINE_CONFIG`);
* ARS-DETR R50 (``--ars-config``, default :data:`ARS_CONFIG`, the paper's settings).

Only their ``model`` and ``optim_wrapper`` are used (and the train pipeline for the batch). The
batch is real and the same images for both: the first ``--batch-size`` training images under
``--data-root`` (by default the synthetic DOTA patches of ``distill_step.py``'s rotated suite)
through each config's training pipeline (``Resize`` to fit ``--img-size`` x ``--img-size``,
``RandomFlip`` left out) and data preprocessor, once, before any timing. ``Pretrained``
``init_cfg`` are removed (no downloads) and the weights are each model's random
``init_weights()``, saved once so that every build starts from them.

A training step is ``loss`` (forward and losses), ``parse_losses``, backward and optimizer step
with the config's ``optim_wrapper``: ``distill_step.py``'s ``student`` run, whose functions this
script reuses for the batch, the steps, the timing and the memory. Reported per detector, as
there: the median and the minimum of ``--steps`` timed steps after ``--warmup`` untimed ones
(seconds; on CUDA synchronised before and after each step) and the peak memory growth (MiB) over
the state before the model was built (on CUDA ``torch.cuda.max_memory_allocated`` over build,
warm-up and timed steps, in this process; on CPU the growth of ``ru_maxrss`` over a build and
``PROBE_STEPS`` steps in a fresh process forked from a preloaded server). For ARS-DETR also:

* its median step and peak memory divided by the baseline's (``x baseline`` columns);
* the deformable-sampling share: ARS-DETR is built once more and, after ``--warmup`` untimed
  steps, ``--profile-steps`` steps run under ``torch.profiler``. ``fwd`` is the time inside the
  ``PROFILER_SCOPE`` ``record_function`` of ``RotatedMultiScaleDeformableAttention`` (the
  sampling of every encoder and decoder layer: mmcv's ``multi_scale_deformable_attn_pytorch``,
  i.e. ``grid_sample`` and the weighted sum, or mmcv's CUDA kernel; not the value, offset,
  weight and output projections nor the sampling locations) over the profiled steps' time;
  ``fwd+bwd`` adds the backward of the autograd nodes created inside those scopes, matched to
  the profiler's ``autograd::engine::evaluate_function`` events by forward thread and sequence
  number (a node created inside a scope has a sequence number recorded by an op inside it and
  lower than the one the first op after the scope records). On CPU the times are the events'
  wall-clock spans; on CUDA the GPU time of the kernels they launch, still over the steps'
  wall-clock time. The profiler's own overhead slows the profiled steps, and both the sampling
  and the rest of the step pay it.

Which implementation the deformable attention ran (``pytorch`` for the ``grid_sample`` path, the
only one on CPU, or ``mmcv-cuda``) is each module's own choice (``use_compiled_kernel``) on a
tensor of ``--device``.
"""
import argparse
import bisect
import copy
import dataclasses
import json
import logging
import os
import os.path as osp
import platform
import statistics
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Set, Tuple

import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from torch import nn
from torch.autograd.profiler_util import FunctionEvent
from torch.profiler import ProfilerActivity, profile

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
from ifkd_mm.models.ars_detr.attention import (  # noqa: E402
    PROFILER_SCOPE, RotatedMultiScaleDeformableAttention)
from ifkd_mm.registry import MODELS  # noqa: E402
from tools.benchmark.distill_step import (PROBE_STEPS, SUITES, Bench,  # noqa: E402
                                          build_step, cpu_peak_memory, init_weights,
                                          load_batch, measure, time_steps, without_pretrained)

BASELINE_CONFIG = 'configs/kd-rnet/rotated-retinanet-rbox-le90_r50_fpn_kld_1x_dota-600.py'
ARS_CONFIG = 'configs/ars-detr/ars-detr_r50_3x_dota-1024.py'
#: distill_step's run that is a plain detector's training step (its Bench calls it the student)
TRAIN_STEP = 'student'
BACKWARD_EVENT = 'autograd::engine::evaluate_function: '


@dataclass
class Detector:
    """A detector to time: its row name, config and the bench its training step runs on."""
    name: str
    config: str
    bench: Bench


@dataclass
class SamplingProfile:
    """Deformable sampling time (seconds) in the profiled steps, and those steps' times."""
    forward_s: float
    backward_s: float
    calls_per_step: float
    step_times_s: List[float]

    @property
    def forward_share(self) -> float:
        return self.forward_s / sum(self.step_times_s)

    @property
    def total_share(self) -> float:
        return (self.forward_s + self.backward_s) / sum(self.step_times_s)


@dataclass
class DetectorResult:
    """One row of the table (see the module docstring for what the numbers mean)."""
    run: str
    config: str
    median_s: float
    min_s: float
    times_s: List[float]
    peak_memory_mib: float
    time_ratio: Optional[float] = None
    memory_ratio: Optional[float] = None
    sampling_share_forward: Optional[float] = None
    sampling_share_forward_backward: Optional[float] = None
    attention_impl: Optional[List[str]] = None


def fresh(bench: Bench) -> Bench:
    """The bench with its own copy of the model config: DETR detectors write their ``bbox_head``
    arguments into the config they are built from, so that a second build from it fails."""
    return dataclasses.replace(bench, student=copy.deepcopy(bench.student))


@contextmanager
def quiet_logger() -> Iterator[None]:
    """mmengine's logger at WARNING inside: the optimizer constructor logs one INFO line per
    parameter and option of a ``paramwise_cfg`` (ARS-DETR's lr_mult: some 200 lines a build)."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def attention_implementations(model: nn.Module, device: str) -> List[str]:
    """The kernels the model's rotated deformable attention modules pick for ``device``."""
    probe = torch.empty(0, device=device)
    return sorted({'mmcv-cuda' if module.use_compiled_kernel(probe) else 'pytorch'
                   for module in model.modules()
                   if isinstance(module, RotatedMultiScaleDeformableAttention)})


def prepare(config_path: str, family: str, args: argparse.Namespace,
            tmp: str) -> Tuple[Detector, List[str], int]:
    """The detector's bench (batch on ``args.device``, weights saved in ``tmp``); the attention
    implementations it uses and its batch's GT box count."""
    cfg = Config.fromfile(config_path)
    scope = cfg.get('default_scope', 'mmdet')
    init_default_scope(scope)
    model_cfg = without_pretrained(cfg.model.to_dict())
    name = f'{family}-r{model_cfg["backbone"]["depth"]}'
    torch.manual_seed(0)
    model = init_weights(MODELS.build(copy.deepcopy(model_cfg)))
    checkpoint = osp.join(tmp, f'{name}.pth')
    torch.save(model.state_dict(), checkpoint)
    implementations = attention_implementations(model, args.device)
    del model
    preprocessor = MODELS.build(model_cfg['data_preprocessor']).to(args.device)
    data = preprocessor(load_batch(cfg, args.data_root, args.img_size, args.batch_size)[0],
                        training=True)
    bench = Bench(student=model_cfg, student_checkpoint=checkpoint, teacher={},
                  optim_wrapper=cfg.optim_wrapper.to_dict(), losses={},
                  batches={'plain': (data['inputs'], data['data_samples'])},
                  device=args.device, threads=torch.get_num_threads(), scope=scope)
    boxes = sum(len(sample.gt_instances) for sample in data['data_samples'])
    return Detector(name, config_path, bench), implementations, boxes


def descendants(event: FunctionEvent) -> List[FunctionEvent]:
    """Every event nested inside ``event`` on its thread."""
    nested = []
    for child in event.cpu_children:
        nested += [child, *descendants(child)]
    return nested


def sampling_nodes(events: Sequence[FunctionEvent]) -> Set[Tuple[int, int]]:
    """(forward thread, sequence number) of the autograd nodes created inside sampling scopes.

    An op records the sequence number the next node created on its thread will get; so the
    numbers recorded inside a scope that are below the one recorded by the first op after it
    are the nodes the scope created.
    """
    numbered: Dict[int, List[Tuple[float, int, int]]] = {}
    for event in events:
        if event.sequence_nr >= 0:
            numbered.setdefault(event.thread, []).append(
                (event.time_range.start, event.sequence_nr, id(event)))
    for ops in numbered.values():
        ops.sort()
    nodes = set()
    for scope in (e for e in events if e.name == PROFILER_SCOPE):
        inside = descendants(scope)
        inside_ids = {id(e) for e in inside}
        ops = numbered.get(scope.thread, [])
        after = bisect.bisect_left(ops, (scope.time_range.end, -1, -1))
        next_number = next((number for _, number, op in ops[after:] if op not in inside_ids),
                           float('inf'))
        nodes |= {(scope.thread, e.sequence_nr) for e in inside
                  if 0 <= e.sequence_nr < next_number}
    return nodes


def sampling_seconds(events: Sequence[FunctionEvent], device: str) -> Tuple[float, float, int]:
    """Forward and backward seconds of the deformable sampling in the events; its calls."""
    def seconds(event: FunctionEvent) -> float:
        if device == 'cuda':
            return event.device_time_total / 1e6
        return event.time_range.elapsed_us() / 1e6

    scopes = [e for e in events if e.name == PROFILER_SCOPE]
    nodes = sampling_nodes(events)
    backward = [e for e in events if e.name.startswith(BACKWARD_EVENT)
                and (e.fwd_thread, e.sequence_nr) in nodes]
    return sum(map(seconds, scopes)), sum(map(seconds, backward)), len(scopes)


def profile_sampling(bench: Bench, warmup: int, steps: int) -> SamplingProfile:
    """The deformable sampling's time in ``steps`` profiled training steps of a fresh build,
    after ``warmup`` untimed ones."""
    step = build_step(fresh(bench), TRAIN_STEP)
    time_steps(step, warmup, 0, bench.device)
    activities = [ProfilerActivity.CPU]
    if bench.device == 'cuda':
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as profiler:
        step_times = time_steps(step, 0, steps, bench.device)
    forward, backward, calls = sampling_seconds(profiler.events(), bench.device)
    if calls == 0:
        raise RuntimeError(f'no {PROFILER_SCOPE!r} event in the profiled ARS-DETR steps')
    return SamplingProfile(forward, backward, calls / steps, step_times)


def table(results: Sequence[DetectorResult]) -> str:
    """The results as a markdown table."""
    lines = ['| run | median step (s) | min step (s) | peak memory (MiB) | time x baseline '
             '| memory x baseline | sampling share fwd | sampling share fwd+bwd |',
             '|---|---:|---:|---:|---:|---:|---:|---:|']

    def cell(value: Optional[float], form: str) -> str:
        return '-' if value is None else format(value, form)

    for r in results:
        lines.append(
            f'| {r.run} | {r.median_s:.3f} | {r.min_s:.3f} | {r.peak_memory_mib:.0f} '
            f'| {cell(r.time_ratio, ".2f")} | {cell(r.memory_ratio, ".2f")} '
            f'| {cell(r.sampling_share_forward, ".3f")} '
            f'| {cell(r.sampling_share_forward_backward, ".3f")} |')
    return '\n'.join(lines)


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    suite = SUITES['rotated']
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--baseline-config', default=osp.join(REPO, BASELINE_CONFIG),
                        help=f'rotated RetinaNet config (default {BASELINE_CONFIG})')
    parser.add_argument('--ars-config', default=osp.join(REPO, ARS_CONFIG),
                        help=f'ARS-DETR config (default {ARS_CONFIG})')
    parser.add_argument('--img-size', type=int, default=512,
                        help='images are resized to fit SIZE x SIZE (default 512)')
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--steps', type=int, default=5, help='timed steps per run (default 5)')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed steps before the timed and the profiled ones (default 2)')
    parser.add_argument('--profile-steps', type=int, default=2,
                        help='ARS-DETR steps under torch.profiler for the sampling share '
                             '(default 2)')
    parser.add_argument('--device', default='cpu', choices=('cpu', 'cuda'))
    parser.add_argument('--threads', type=int,
                        help="torch's CPU threads (default: torch's own choice)")
    parser.add_argument('--data-root', default=osp.join(REPO, suite.data_root),
                        help='DOTA patches with trainval/{images,annfiles} (default: the '
                             f'synthetic {suite.data_root})')
    parser.add_argument('--out', help='write the settings and results to this JSON file')
    args = parser.parse_args(argv)
    for name in ('img_size', 'batch_size', 'steps', 'profile_steps', 'threads'):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be at least 1')
    if args.warmup < 0:
        parser.error('--warmup must be at least 0')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is available')
    for option, path in (('--baseline-config', args.baseline_config),
                         ('--ars-config', args.ars_config)):
        if not osp.isfile(path):
            parser.error(f'{option}: no file {path}')
    if not osp.isdir(args.data_root):
        parser.error(f'--data-root: no folder {args.data_root} (write the synthetic data '
                     f'with {suite.make_data})')
    return args


def main(argv: Optional[Sequence[str]] = None) -> List[DetectorResult]:
    """Run the benchmark, print the table (and write ``--out``); returns the rows."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix='detector_step_') as tmp:
        baseline, _, boxes = prepare(args.baseline_config, 'rotated-retinanet', args, tmp)
        ars, implementations, _ = prepare(args.ars_config, 'ars-detr', args, tmp)
        times, peaks = {}, {}
        for i, detector in enumerate((baseline, ars), 1):
            print(f'[{i}/3] {detector.name}: {args.warmup} warm-up + {args.steps} timed steps',
                  flush=True)
            init_default_scope(detector.bench.scope)
            with quiet_logger():
                times[detector.name], peaks[detector.name] = measure(
                    fresh(detector.bench), TRAIN_STEP, args.warmup, args.steps)
            print('    step times (s): ' + ' '.join(f'{t:.3f}' for t in times[detector.name]),
                  flush=True)
        print(f'[3/3] {ars.name}: {args.warmup} warm-up + {args.profile_steps} profiled steps',
              flush=True)
        with quiet_logger():
            sampling = profile_sampling(ars.bench, args.warmup, args.profile_steps)
        if args.device == 'cpu':
            for detector in (baseline, ars):
                print(f'memory probe of {detector.name}:', flush=True)
                peaks[detector.name] = cpu_peak_memory(fresh(detector.bench),
                                                       [TRAIN_STEP])[TRAIN_STEP]
    medians = {name: statistics.median(t) for name, t in times.items()}
    results = [DetectorResult(run=d.name, config=d.config, median_s=medians[d.name],
                              min_s=min(times[d.name]), times_s=times[d.name],
                              peak_memory_mib=peaks[d.name]) for d in (baseline, ars)]
    results[1].time_ratio = medians[ars.name] / medians[baseline.name]
    results[1].memory_ratio = peaks[ars.name] / peaks[baseline.name]
    results[1].sampling_share_forward = sampling.forward_share
    results[1].sampling_share_forward_backward = sampling.total_share
    results[1].attention_impl = implementations

    if args.device == 'cuda':
        device = torch.cuda.get_device_name()
        memory = ('torch.cuda.max_memory_allocated growth over build, warm-up and timed steps, '
                  'in this process')
        sampling_time = 'GPU time of the kernels launched'
    else:
        device = f'{platform.processor() or platform.machine()}, threads: {torch.get_num_threads()}'
        memory = (f'ru_maxrss growth over build and {PROBE_STEPS} steps, each run in a fresh '
                  'process')
        sampling_time = 'wall-clock time'
    inputs = {d.name: tuple(d.bench.batches['plain'][0].shape) for d in (baseline, ars)}
    profiled = statistics.median(sampling.step_times_s)
    notes = [f'{baseline.name}: training step of {baseline.config}',
             f'{ars.name}: training step of {ars.config}',
             'weights: random (init_weights(), saved to temporary files)',
             f'batch: the first {args.batch_size} training images of {args.data_root} through '
             f'each config\'s train pipeline (Resize to fit {args.img_size}, no flip) and data '
             f'preprocessor: inputs {inputs}, {boxes} GT boxes',
             f'device: {args.device} ({device}; load average at the end '
             f'{os.getloadavg()[0]:.1f}), torch {torch.__version__}',
             f'step time: median (and min) of {args.steps} timed steps after {args.warmup} '
             'warm-up ones',
             f'peak memory: {memory}',
             f'x baseline: {ars.name} median step / {baseline.name} median step; the same for '
             'peak memory',
             f'deformable attention implementation of {ars.name}: {", ".join(implementations)}',
             f'sampling share: {sampling_time} inside {PROFILER_SCOPE!r} (the deformable '
             f'sampling alone, {sampling.calls_per_step:.0f} calls per step: every encoder and '
             'decoder layer; fwd) plus the backward of the autograd nodes created there (fwd+bwd)'
             f', over the time of {args.profile_steps} steps under torch.profiler after '
             f'{args.warmup} warm-up ones (median {profiled:.3f} s against {medians[ars.name]:.3f}'
             ' s unprofiled)']
    print('\n' + table(results) + '\n\n' + '\n'.join(notes), flush=True)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(settings=dict(vars(args), notes=notes),
                           results=[asdict(r) for r in results]), f, indent=2)
    return results


if __name__ == '__main__':
    main()
