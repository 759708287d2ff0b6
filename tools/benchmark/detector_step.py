"""Time and size one training step of ARS-DETR against rotated RetinaNet at the same image size,
and MutDet's pre-training step against ARS-DETR's.

    python tools/benchmark/detector_step.py [--baseline-config CONFIG] [--ars-config CONFIG] \
        [--mutdet-config CONFIG] [--pseudo-boxes 100 1000] \
        [--img-size 512] [--batch-size 2] [--steps 5] [--warmup 2] [--profile-steps 2] \
        [--device cpu|cuda] [--threads N] [--data-root DIR] [--out results.json]

The detectors, by default the DOTA configs at ResNet-50:

* the baseline, rotated RetinaNet R50 (``--baseline-config``, default KD-RNet's teacher
  :data:`BASELINE_CONFIG`);
* ARS-DETR R50 (``--ars-config``, default :data:`ARS_CONFIG`, the paper's settings);
* MutDet R50 pre-training (``--mutdet-config``, default :data:`MUTDET_CONFIG`), one row
  ``mutdet-r{depth}-{n}boxes`` per ``--pseudo-boxes`` count n (default 100 and 1000; none
  leaves these rows out).

Only their ``model`` and ``optim_wrapper`` are used (and the train pipeline for the batch). The
batch is real and the same images for all: the first ``--batch-size`` training images under
``--data-root`` (by default the synthetic DOTA patches of ``distill_step.py``'s rotated suite)
through each config's training pipeline (``Resize`` to fit ``--img-size`` x ``--img-size``,
``RandomFlip`` left out) and data preprocessor, once, before any timing. ``Pretrained``
``init_cfg`` are removed (no downloads) and the weights are each model's random
``init_weights()``, saved once so that every build starts from them.

A MutDet row's images are ARS-DETR's: the same images through the ARS-DETR config's training
pipeline (the MutDet pipeline needs pseudo-label files), then the MutDet config's data
preprocessor; their ground truth is then replaced by n pseudo-boxes per image, drawn once from a
generator seeded with :data:`PSEUDO_LABEL_SEED` (:func:`with_pseudo_labels`): le90 boxes with
sides uniform in :data:`PSEUDO_BOX_SIDES` px, the angle uniform in [-pi/2, pi/2) and the centre
uniform over the positions that keep all four corners inside the image, cluster ids uniform in
[0, ``num_classes``) and standard normal embeddings of the config's ``object_dims``, in the
format of MutDet's pre-training batches (``gt_instances.bboxes`` / ``labels`` /
``embeddings``). n above the config's ``model.max_objects`` is an error: the detector would
keep only that many.

A training step is ``loss`` (forward and losses), ``parse_losses``, backward and optimizer step
with the config's ``optim_wrapper``: ``distill_step.py``'s ``student`` run, whose functions this
script reuses for the batch, the steps, the timing and the memory. For MutDet that is the whole
pre-training step of ``MutDet.loss``: the backbone (frozen in the MutDet configs), the
encoder, the mutual enhancement of the features and the pseudo-boxes' embeddings, the enhanced
branch's and the siamese branch's decoders and losses (detection and contrastive alignment).
Reported per detector, as there: the median and the minimum of ``--steps`` timed steps after
``--warmup`` untimed ones (seconds; on CUDA synchronised before and after each step) and the peak
memory growth (MiB) over the state before the model was built (on CUDA
``torch.cuda.max_memory_allocated`` over build, warm-up and timed steps, in this process; on CPU
the growth of ``ru_maxrss`` over a build and ``PROBE_STEPS`` steps in a fresh process forked from
a preloaded server). For ARS-DETR also:

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

For each MutDet row: its median step and peak memory divided by ARS-DETR's (``x ars-detr``
columns), i.e. the cost of a pre-training step with n pseudo-boxes per image against a plain
ARS-DETR training step on the same images and their real annotations.

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
import math
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
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from mmrotate.structures.bbox import RotatedBoxes
from torch import Tensor, nn
from torch.autograd.profiler_util import FunctionEvent
from torch.profiler import ProfilerActivity, profile

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
from ifkd_mm.models.ars_detr.attention import (  # noqa: E402
    PROFILER_SCOPE, RotatedMultiScaleDeformableAttention)
from ifkd_mm.models.mutdet import MutDet  # noqa: E402
from ifkd_mm.registry import MODELS  # noqa: E402
from tools.benchmark.distill_step import (PROBE_STEPS, SUITES, Bench,  # noqa: E402
                                          build_step, cpu_peak_memory, init_weights,
                                          load_batch, measure, time_steps, without_pretrained)

BASELINE_CONFIG = 'configs/kd-rnet/rotated-retinanet-rbox-le90_r50_fpn_kld_1x_dota-600.py'
ARS_CONFIG = 'configs/ars-detr/ars-detr_r50_3x_dota-1024.py'
MUTDET_CONFIG = 'configs/mutdet/mutdet_ars-detr_r50_36e_dota-800-pretrain.py'
#: default --pseudo-boxes: pseudo-boxes per image of the MutDet rows
PSEUDO_BOXES = (100, 1000)
#: smallest and largest side (px) of a random pseudo-box
PSEUDO_BOX_SIDES = (4.0, 64.0)
PSEUDO_LABEL_SEED = 0
#: distill_step's run that is a plain detector's training step (its Bench calls it the student)
TRAIN_STEP = 'student'
BACKWARD_EVENT = 'autograd::engine::evaluate_function: '


@dataclass
class Detector:
    """A detector to time: its row name, config and the bench its training step runs on."""
    name: str
    config: str
    bench: Bench
    pseudo_boxes: Optional[int] = None


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
    pseudo_boxes: Optional[int] = None
    time_ratio_ars: Optional[float] = None
    memory_ratio_ars: Optional[float] = None


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


def random_le90_boxes(num_boxes: int, height: int, width: int,
                      generator: torch.Generator) -> Tensor:
    """(num_boxes, 5) le90 boxes (cx, cy, w, h, t) inside a ``height`` x ``width`` image: sides
    uniform in :data:`PSEUDO_BOX_SIDES`, t uniform in [-pi/2, pi/2), the centre uniform over the
    positions that keep all four corners inside the image."""
    low, high = PSEUDO_BOX_SIDES
    if min(height, width) < high * math.sqrt(2):
        raise ValueError(f'pseudo-boxes with sides up to {high:g} px need images of at least '
                         f'{math.ceil(high * math.sqrt(2))} px a side at any angle; an image '
                         f'of the batch is {height}x{width} px (raise --img-size)')
    sides = low + (high - low) * torch.rand(num_boxes, 2, generator=generator)
    angles = (torch.rand(num_boxes, generator=generator) - 0.5) * math.pi
    cos, sin = angles.cos().abs(), angles.sin().abs()
    half_x = (sides[:, 0] * cos + sides[:, 1] * sin) / 2
    half_y = (sides[:, 0] * sin + sides[:, 1] * cos) / 2
    position = torch.rand(num_boxes, 2, generator=generator)
    centre_x = half_x + position[:, 0] * (width - 2 * half_x)
    centre_y = half_y + position[:, 1] * (height - 2 * half_y)
    return torch.stack([centre_x, centre_y, sides[:, 0], sides[:, 1], angles], dim=1)


def pseudo_instances(boxes: Tensor, labels: Tensor, embeddings: Tensor,
                     device: torch.device) -> InstanceData:
    """Instances as MutDet's pre-training batches carry them."""
    return InstanceData(bboxes=RotatedBoxes(boxes.to(device)), labels=labels.to(device),
                        embeddings=embeddings.to(device))


def with_pseudo_labels(samples: Sequence[DetDataSample], num_boxes: int, num_classes: int,
                       object_dims: int, seed: int = PSEUDO_LABEL_SEED) -> List[DetDataSample]:
    """Copies of the samples whose ground truth is ``num_boxes`` random pseudo-boxes per image
    (:func:`random_le90_boxes` in its ``img_shape``), cluster ids uniform in
    [0, ``num_classes``) and standard normal embeddings of ``object_dims``; no ignored boxes."""
    generator = torch.Generator().manual_seed(seed)
    replaced = []
    for sample in samples:
        height, width = sample.metainfo['img_shape'][:2]
        device = sample.gt_instances.bboxes.device
        boxes = random_le90_boxes(num_boxes, height, width, generator)
        labels = torch.randint(num_classes, (num_boxes, ), generator=generator)
        embeddings = torch.randn(num_boxes, object_dims, generator=generator)
        sample = sample.clone()
        sample.gt_instances = pseudo_instances(boxes, labels, embeddings, device)
        sample.ignored_instances = pseudo_instances(
            boxes[:0], labels[:0], embeddings[:0], device)
        replaced.append(sample)
    return replaced


def saved_initial_model(model_cfg: dict, checkpoint: str) -> nn.Module:
    """The model with its random ``init_weights()`` (seed 0), its state dict saved to
    ``checkpoint``."""
    torch.manual_seed(0)
    model = init_weights(MODELS.build(copy.deepcopy(model_cfg)))
    torch.save(model.state_dict(), checkpoint)
    return model


def preprocessed_batch(model_cfg: dict, pipeline_cfg: Config,
                       args: argparse.Namespace) -> Tuple[Tensor, List[DetDataSample]]:
    """The batch through ``pipeline_cfg``'s training pipeline and ``model_cfg``'s data
    preprocessor, on ``args.device``."""
    preprocessor = MODELS.build(model_cfg['data_preprocessor']).to(args.device)
    data = preprocessor(load_batch(pipeline_cfg, args.data_root, args.img_size,
                                   args.batch_size)[0], training=True)
    return data['inputs'], data['data_samples']


def detector_bench(model_cfg: dict, checkpoint: str, cfg: Config,
                   batch: Tuple[Tensor, List[DetDataSample]], device: str) -> Bench:
    """A bench whose ``student`` run is the detector's training step on ``batch``."""
    return Bench(student=model_cfg, student_checkpoint=checkpoint, teacher={},
                 optim_wrapper=cfg.optim_wrapper.to_dict(), losses={}, batches={'plain': batch},
                 device=device, threads=torch.get_num_threads(),
                 scope=cfg.get('default_scope', 'mmdet'))


def prepare(config_path: str, family: str, args: argparse.Namespace,
            tmp: str) -> Tuple[Detector, List[str], int]:
    """The detector's bench (batch on ``args.device``, weights saved in ``tmp``); the attention
    implementations it uses and its batch's GT box count."""
    cfg = Config.fromfile(config_path)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model_cfg = without_pretrained(cfg.model.to_dict())
    name = f'{family}-r{model_cfg["backbone"]["depth"]}'
    checkpoint = osp.join(tmp, f'{name}.pth')
    model = saved_initial_model(model_cfg, checkpoint)
    implementations = attention_implementations(model, args.device)
    del model
    batch = preprocessed_batch(model_cfg, cfg, args)
    bench = detector_bench(model_cfg, checkpoint, cfg, batch, args.device)
    boxes = sum(len(sample.gt_instances) for sample in batch[1])
    return Detector(name, config_path, bench), implementations, boxes


def prepare_mutdet(args: argparse.Namespace, tmp: str) -> Tuple[List[Detector], int, int]:
    """One MutDet detector per ``args.pseudo_boxes`` count, on the ARS-DETR config's images
    with pseudo-labels (see the module docstring); its ``num_classes`` and ``object_dims``."""
    cfg = Config.fromfile(args.mutdet_config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model_cfg = without_pretrained(cfg.model.to_dict())
    name = f'mutdet-r{model_cfg["backbone"]["depth"]}'
    checkpoint = osp.join(tmp, f'{name}.pth')
    model = saved_initial_model(model_cfg, checkpoint)
    if not isinstance(model, MutDet):
        raise ValueError(f'--mutdet-config {args.mutdet_config} builds a '
                         f'{type(model).__name__}, not a MutDet')
    too_many = [n for n in args.pseudo_boxes if n > model.max_objects]
    if too_many:
        raise ValueError(f'--pseudo-boxes {too_many}: {args.mutdet_config} keeps at most '
                         f'model.max_objects={model.max_objects} pseudo-boxes per image')
    num_classes, object_dims = model.bbox_head.num_classes, model.enhancement.object_dims
    del model
    inputs, samples = preprocessed_batch(model_cfg, Config.fromfile(args.ars_config), args)
    detectors = []
    for n in args.pseudo_boxes:
        batch = (inputs, with_pseudo_labels(samples, n, num_classes, object_dims))
        detectors.append(Detector(f'{name}-{n}boxes', args.mutdet_config,
                                  detector_bench(model_cfg, checkpoint, cfg, batch, args.device),
                                  pseudo_boxes=n))
    return detectors, num_classes, object_dims


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
             '| memory x baseline | sampling share fwd | sampling share fwd+bwd '
             '| time x ars-detr | memory x ars-detr |',
             '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|']

    def cell(value: Optional[float], form: str) -> str:
        return '-' if value is None else format(value, form)

    for r in results:
        lines.append(
            f'| {r.run} | {r.median_s:.3f} | {r.min_s:.3f} | {r.peak_memory_mib:.0f} '
            f'| {cell(r.time_ratio, ".2f")} | {cell(r.memory_ratio, ".2f")} '
            f'| {cell(r.sampling_share_forward, ".3f")} '
            f'| {cell(r.sampling_share_forward_backward, ".3f")} '
            f'| {cell(r.time_ratio_ars, ".2f")} | {cell(r.memory_ratio_ars, ".2f")} |')
    return '\n'.join(lines)


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    suite = SUITES['rotated']
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--baseline-config', default=osp.join(REPO, BASELINE_CONFIG),
                        help=f'rotated RetinaNet config (default {BASELINE_CONFIG})')
    parser.add_argument('--ars-config', default=osp.join(REPO, ARS_CONFIG),
                        help=f'ARS-DETR config (default {ARS_CONFIG})')
    parser.add_argument('--mutdet-config', default=osp.join(REPO, MUTDET_CONFIG),
                        help=f'MutDet pre-training config (default {MUTDET_CONFIG})')
    parser.add_argument('--pseudo-boxes', type=int, nargs='*', default=list(PSEUDO_BOXES),
                        metavar='N', help='a MutDet row per N: N random pseudo-boxes per image '
                        f'(default {" ".join(map(str, PSEUDO_BOXES))}; none: no MutDet row)')
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
    if any(n < 1 for n in args.pseudo_boxes):
        parser.error(f'--pseudo-boxes must each be at least 1, got {args.pseudo_boxes}')
    if len(set(args.pseudo_boxes)) != len(args.pseudo_boxes):
        parser.error(f'--pseudo-boxes has a count twice: {args.pseudo_boxes}')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is available')
    configs = [('--baseline-config', args.baseline_config), ('--ars-config', args.ars_config)]
    if args.pseudo_boxes:
        configs.append(('--mutdet-config', args.mutdet_config))
    for option, path in configs:
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
        mutdets, num_classes, object_dims = (prepare_mutdet(args, tmp) if args.pseudo_boxes
                                             else ([], None, None))
        detectors = [baseline, ars, *mutdets]
        stages = len(detectors) + 1
        times, peaks = {}, {}
        for i, detector in enumerate(detectors, 1):
            print(f'[{i}/{stages}] {detector.name}: {args.warmup} warm-up + {args.steps} timed '
                  'steps', flush=True)
            init_default_scope(detector.bench.scope)
            with quiet_logger():
                times[detector.name], peaks[detector.name] = measure(
                    fresh(detector.bench), TRAIN_STEP, args.warmup, args.steps)
            print('    step times (s): ' + ' '.join(f'{t:.3f}' for t in times[detector.name]),
                  flush=True)
        print(f'[{stages}/{stages}] {ars.name}: {args.warmup} warm-up + {args.profile_steps} '
              'profiled steps', flush=True)
        init_default_scope(ars.bench.scope)
        with quiet_logger():
            sampling = profile_sampling(ars.bench, args.warmup, args.profile_steps)
        if args.device == 'cpu':
            for detector in detectors:
                print(f'memory probe of {detector.name}:', flush=True)
                peaks[detector.name] = cpu_peak_memory(fresh(detector.bench),
                                                       [TRAIN_STEP])[TRAIN_STEP]
    medians = {name: statistics.median(t) for name, t in times.items()}
    results = [DetectorResult(run=d.name, config=d.config, median_s=medians[d.name],
                              min_s=min(times[d.name]), times_s=times[d.name],
                              peak_memory_mib=peaks[d.name], pseudo_boxes=d.pseudo_boxes)
               for d in detectors]
    results[1].time_ratio = medians[ars.name] / medians[baseline.name]
    results[1].memory_ratio = peaks[ars.name] / peaks[baseline.name]
    results[1].sampling_share_forward = sampling.forward_share
    results[1].sampling_share_forward_backward = sampling.total_share
    results[1].attention_impl = implementations
    for result in results[2:]:
        result.time_ratio_ars = medians[result.run] / medians[ars.name]
        result.memory_ratio_ars = peaks[result.run] / peaks[ars.name]

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
    if mutdets:
        low, high = PSEUDO_BOX_SIDES
        names = ', '.join(d.name for d in mutdets)
        frozen = mutdets[0].bench.student['backbone'].get('frozen_stages', -1)
        notes += [f'{names}: pre-training step of {args.mutdet_config} (both branches, '
                  f'backbone frozen_stages={frozen}) on {ars.name}\'s images (its pipeline, then '
                  'the MutDet data preprocessor) with the GT replaced by N pseudo-boxes per '
                  f'image (seed {PSEUDO_LABEL_SEED}): le90, sides uniform in {low:g}-{high:g} px, '
                  'angle uniform in [-pi/2, pi/2), corners inside the image; cluster ids uniform '
                  f'in [0, {num_classes}), N(0, 1) embeddings of {object_dims} dims',
                  f'x ars-detr: MutDet median step / {ars.name} median step; the same for peak '
                  'memory']
    print('\n' + table(results) + '\n\n' + '\n'.join(notes), flush=True)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(settings=dict(vars(args), notes=notes),
                           results=[asdict(r) for r in results]), f, indent=2)
    return results


if __name__ == '__main__':
    main()
