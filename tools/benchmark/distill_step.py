"""Time (and size) one training step of each distillation method against the student and teacher.

    python tools/benchmark/distill_step.py [--suite horizontal|rotated] [--student CONFIG] \
        [--teacher CONFIG] [--methods fitnet at fkd insdist fgd frs arsd ifkd ...] \
        [--img-size 512] [--batch-size 2] [--steps 5] [--warmup 2] [--device cpu|cuda] \
        [--threads N] [--teacher-autocast bfloat16|float16] [--sam-checkpoint PATH] \
        [--data-root DIR] [--keep-freed-memory] [--out results.json]

``--suite`` picks the default student, teacher, methods and data (:data:`SUITES`):
``horizontal`` (RetinaNet R50 -> R18 on ShipRSImageNet; FitNet, AT, FKD, InsDist, FGD, FRS, ARSD,
IFKD) or
``rotated`` (rotated RetinaNet R50 -> R18 of KD-RNet's DOTA-600 configs; KD-RNet, DKED).

The batch is real: the first ``--batch-size`` training images of the suite's data under
``--data-root`` (by default the synthetic copies written by ``tools/data/make_synthetic.py --out
data/synthetic --datasets shiprs dota``, the DOTA images cut into patches with
``tools/data/split_dota.py`` as the README's rotated demo does), through the student config's
training pipeline (``Resize`` to fit ``--img-size`` x ``--img-size``; ``RandomFlip`` left out so
that the batch is fixed) and its data preprocessor, once, before any timing. Every run uses that
batch, in this process; each is built and warmed up in turn, then the timed steps are interleaved
(:func:`round_order`): ``--steps`` rounds of one step of every method, each round's methods
rotated one further along, with a student step and a teacher forward alternating before, between
and after them (``student m1 teacher m2 student ...``), so that every method step is timed
between one student step and one teacher forward. A shared machine's pace drifts over seconds
(on a 2-core VM, consecutive steps' times correlated at 0.4-0.7, steps eight apart at -0.1 to
0.4); a method compared with its neighbours is compared at the same pace. The runs:

* ``student``: a training step of the plain student detector: ``loss`` (forward and losses),
  ``parse_losses``, backward and optimizer step (the student config's ``optim_wrapper``);
* ``teacher``: the teacher's forward alone, in eval mode under no_grad: backbone, neck and dense
  head (the whole network of a one-stage detector; the RPN of a two-stage one). The distiller
  skips the teacher's head when no loss reads it (fitnet, at, fkd, insdist, fgd), so their
  overhead can be below 1;
* each method: the same training step of ``DetectionDistiller`` with the method's loss modules
  (student forward and losses, teacher forward, the distillation losses, backward, step);
  then its loss modules alone: the forward of every one of them and the backward of their summed
  losses, on student and teacher outputs recorded once on the batch (the student's as leaf
  tensors requiring grad, so that the backward stops at them), a fresh ``DistillBatch`` per step
  as the distiller makes (the online EDE's MobileSAM runs in it), timed after the rounds.

With ``--teacher-autocast``, the teacher's forward runs under ``torch.autocast`` to that dtype, in
the ``teacher`` run and in every method (``DetectionDistiller(teacher_autocast=...)``, which also
casts the recorded teacher outputs back to float32 for the loss modules).

The loss modules are the ``model.distill_losses`` of the method's config in ``configs/baselines``,
``configs/ifkd``, ``configs/kd-rnet`` or ``configs/dked`` (:data:`METHODS`), with
``student_channels``/``teacher_channels`` set to the two necks' ``out_channels``. ``ifkd`` is
FDR + HSM (EDE off); ``ifkd-ede-online`` is the full IFKD (EDE + FDR + HSM) running MobileSAM on
the batch at every step; ``ifkd-ede-cached`` is the
full IFKD reading the MobileSAM prior from ``data_sample.gt_sem_seg``, loaded by the
``LoadSAMPrior`` transform from PNGs that ``tools/ifkd/precompute_sam_prior.py``'s
``precompute_priors`` writes for the batch's images before timing. ``dked`` trains its DDC
modules in the step (the exported student does not have them).

Detector configs have their ``Pretrained`` ``init_cfg`` removed (no downloads); the student and
teacher weights are their random ``init_weights()``, saved once to temporary files (every run
starts from the same student), and without ``--sam-checkpoint`` MobileSAM's weights are random
too. Weights do not change the step time.

Reported per run: the median and the minimum (less sensitive to other processes on a shared
machine) of its timed steps after ``--warmup`` untimed ones (``--steps`` for a method, about
``--steps`` x (methods + 1) / 2 for the student and the teacher), in seconds (on CUDA
synchronised before and after each step); for a method, the median of as many timed calls of its
loss modules alone (after as many warm-up ones); the peak memory growth (MiB) over the state
before the run's model was built, so weights, gradients, optimizer state and activations (and the
teacher and MobileSAM) count: on CUDA ``torch.cuda.max_memory_allocated`` during build and
warm-up, in this process; on CPU the growth of ``ru_maxrss`` over a build and
:data:`PROBE_STEPS` steps in a fresh process, forked from a server that only imported the
libraries; and a method's overhead = the median over its steps of step / (the student step +
teacher forward just before and after it).

glibc's malloc gives every large tensor a fresh memory mapping and unmaps it when it is freed, so
each step faults its activations' pages in anew (about 200,000 minor faults per FRS step at 512 px,
36,000 per student step), a cost that grows with a run's memory. ``--keep-freed-memory``
(:func:`keep_freed_memory`) makes this process keep freed memory for reuse instead, as jemalloc or
tcmalloc would; the peak-memory processes keep glibc's defaults.
"""
import argparse
import copy
import ctypes
import gc
import json
import logging
import os
import os.path as osp
import platform
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mobile_sam import sam_model_registry
from torch import Tensor, nn

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
import ifkd_mm  # noqa: E402,F401  (registers the distiller, losses and datasets)
from ifkd_mm.distillation.distiller import (TEACHER_AUTOCAST_DTYPES,  # noqa: E402
                                            DetectionDistiller, autocast_or_not,
                                            build_teacher, dense_head, recording,
                                            teacher_autocast_dtype)
from ifkd_mm.distillation.ifkd.ede import build_mobile_sam  # noqa: E402
from ifkd_mm.registry import DATASETS, MODELS  # noqa: E402
from tools.ifkd.precompute_sam_prior import precompute_priors  # noqa: E402

#: method -> (config whose ``model.distill_losses`` it uses, EDE mode to set or None)
METHODS: Dict[str, Tuple[str, Optional[str]]] = {
    'fitnet': ('configs/baselines/fitnet_retinanet_r50-mnv2_fpn_100e_shiprs.py', None),
    'at': ('configs/baselines/at_retinanet_r50-mnv2_fpn_100e_shiprs.py', None),
    'fkd': ('configs/baselines/fkd_retinanet_r50-mnv2_fpn_100e_shiprs.py', None),
    'insdist': ('configs/baselines/insdist_retinanet_r50-mnv2_fpn_100e_shiprs.py', None),
    'fgd': ('configs/baselines/fgd_retinanet_r50-mnv2_fpn_100e_shiprs.py', None),
    'frs': ('configs/baselines/frs_retinanet_r50-mnv2_fpn_100e_shiprs.py', None),
    'arsd': ('configs/baselines/arsd_retinanet_r50-mnv2_fpn_100e_shiprs.py', None),
    'ifkd': ('configs/ifkd/ifkd-fdr-hsm_retinanet_r50-mnv2_fpn_100e_shiprs.py', None),
    'ifkd-ede-online': ('configs/ifkd/ifkd_retinanet_r50-r18_fpn_100e_shiprs.py', 'online'),
    'ifkd-ede-cached': ('configs/ifkd/ifkd_retinanet_r50-r18_fpn_100e_shiprs.py', 'cached'),
    'kd-rnet': ('configs/kd-rnet/'
                'kd-rnet_rotated-retinanet-rbox-le90_r50-r18_fpn_kld_1x_dota-600.py', None),
    'dked': ('configs/dked/dked_rotated-retinanet-rbox-le90_r50-r18_fpn_kld_1x_dota-600.py', None),
}


class Suite(NamedTuple):
    """Default student and teacher configs, methods and data of a ``--suite``."""
    student: str
    teacher: str
    methods: Tuple[str, ...]
    data_root: str
    make_data: str  # the command that writes the default data


SUITES: Dict[str, Suite] = {
    'horizontal': Suite(
        'configs/detectors/retinanet_r18_fpn_100e_shiprs.py',
        'configs/detectors/retinanet_r50_fpn_100e_shiprs.py',
        ('fitnet', 'at', 'fkd', 'insdist', 'fgd', 'frs', 'arsd', 'ifkd', 'ifkd-ede-online',
         'ifkd-ede-cached'),
        'data/synthetic/ShipRSImageNet',
        'python tools/data/make_synthetic.py --out data/synthetic --datasets shiprs'),
    'rotated': Suite(
        'configs/kd-rnet/rotated-retinanet-rbox-le90_r18_fpn_kld_1x_dota-600.py',
        'configs/kd-rnet/rotated-retinanet-rbox-le90_r50_fpn_kld_1x_dota-600.py',
        ('kd-rnet', 'dked'),
        'data/synthetic/DOTA/split_128',
        'python tools/data/make_synthetic.py --out data/synthetic --datasets dota && '
        'python tools/data/split_dota.py --src data/synthetic/DOTA --out '
        'data/synthetic/DOTA/split_128 --size 128 --train-overlap 32 --test-overlap 64 '
        '--splits train:trainval val:val'),
}
#: training steps of a CPU memory probe: the second one runs with the optimizer state allocated
PROBE_STEPS = 2
#: modules the memory probes' fork server imports once, so that each probe starts in seconds
PRELOAD = ['torch', 'mmdet.models', 'mmrotate.models', 'mmengine.optim', 'ifkd_mm', 'mobile_sam']


@dataclass
class Bench:
    """What every run needs; picklable, so that CPU memory probes get a copy.

    Attributes:
        student: the student's model config.
        student_checkpoint: its initial weights (``init_weights()``, saved once): every run
            starts from them, and loading is much faster than initialising.
        teacher: ``dict(config=<teacher model config>, checkpoint=<file>)``.
        optim_wrapper: the student config's ``optim_wrapper``.
        losses: method -> its ``distill_losses``.
        batches: ``'plain'`` and, for the cached EDE, ``'cached'`` (the same images with their
            prior in ``gt_sem_seg``) -> preprocessed (inputs, data samples) on ``device``.
        device: ``'cpu'`` or ``'cuda'``.
        threads: torch's CPU threads.
        scope: the registry scope of the configs (``default_scope``).
        teacher_autocast: the dtype name the teacher's forward runs in under autocast, or None
            (full precision).
    """
    student: dict
    student_checkpoint: str
    teacher: dict
    optim_wrapper: dict
    losses: Dict[str, List[dict]]
    batches: Dict[str, Tuple[Tensor, list]]
    device: str
    threads: int
    scope: str
    teacher_autocast: Optional[str] = None


@dataclass
class Result:
    """One row of the table (see the module docstring for what the numbers mean)."""
    run: str
    median_s: float
    min_s: float
    times_s: List[float]
    peak_memory_mib: float
    overhead: Optional[float] = None
    losses_median_s: Optional[float] = None
    losses_times_s: Optional[List[float]] = None


def without_pretrained(config):
    """A copy of a (nested) config with every ``Pretrained`` ``init_cfg`` set to None."""
    if isinstance(config, dict):
        return {key: None if key == 'init_cfg' and isinstance(value, dict)
                and value.get('type') == 'Pretrained' else without_pretrained(value)
                for key, value in config.items()}
    if isinstance(config, (list, tuple)):
        return type(config)(without_pretrained(value) for value in config)
    return config


def method_losses(method: str, student_channels: int, teacher_channels: int,
                  sam_checkpoint: Optional[str]) -> List[dict]:
    """The method's ``distill_losses`` from its config, fitted to the necks and the EDE mode."""
    path, ede_mode = METHODS[method]
    losses = Config.fromfile(osp.join(REPO, path)).model.to_dict()['distill_losses']
    for loss in losses:
        if 'student_channels' in loss:
            loss['student_channels'] = student_channels
        if 'teacher_channels' in loss:
            loss['teacher_channels'] = teacher_channels
        if loss.get('ede') is not None:
            loss['ede'].update(checkpoint=sam_checkpoint, mode=ede_mode)
    return losses


def load_batch(cfg: Config, data_root: str, img_size: int, batch_size: int,
               prior_dir: Optional[str] = None) -> Tuple[dict, List[str]]:
    """The first ``batch_size`` training images through the pipeline, collated; their paths.

    ``Resize`` fits ``img_size`` x ``img_size``, ``RandomFlip`` is left out; with ``prior_dir``,
    ``LoadSAMPrior`` follows ``LoadImageFromFile``.
    """
    pipeline = []
    for transform in cfg.train_dataloader.dataset.pipeline:
        transform = copy.deepcopy(transform)
        name = transform['type'].split('.')[-1]  # 'mmdet.Resize' in mmrotate configs
        if name == 'RandomFlip':
            continue
        if name == 'Resize':
            transform['scale'] = (img_size, img_size)
        pipeline.append(transform)
        if name == 'LoadImageFromFile' and prior_dir is not None:
            pipeline.append(dict(type='LoadSAMPrior', prior_dir=prior_dir))
    dataset_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    dataset_cfg.update(data_root=data_root, pipeline=pipeline)
    dataset = DATASETS.build(dataset_cfg)
    indices = [i % len(dataset) for i in range(batch_size)]
    paths = [dataset.get_data_info(i)['img_path'] for i in indices]
    return pseudo_collate([dataset[i] for i in indices]), paths


def init_weights(model: nn.Module) -> nn.Module:
    """``model.init_weights()`` (as the runner does) without its per-parameter log lines."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    return model


def run_batch(bench: Bench, run: str) -> Tuple[Tensor, list]:
    """The batch ``run`` trains on: with the cached MobileSAM prior for ``ifkd-ede-cached``."""
    return bench.batches['cached' if METHODS.get(run, ('', None))[1] == 'cached' else 'plain']


def build_distiller(bench: Bench, method: str) -> DetectionDistiller:
    """The method's distiller from the bench's student weights, on the device, in training mode."""
    model = MODELS.build(dict(type='DetectionDistiller', student=bench.student,
                              teacher=bench.teacher, distill_losses=bench.losses[method],
                              teacher_autocast=bench.teacher_autocast))
    model.student.load_state_dict(torch.load(bench.student_checkpoint, map_location='cpu'))
    return model.to(bench.device).train()


def build_step(bench: Bench, run: str) -> Callable[[], None]:
    """A closure running one step of ``run`` (``'student'``, ``'teacher'`` or a method)."""
    torch.manual_seed(0)
    if run == 'teacher':
        teacher = build_teacher(bench.teacher).to(bench.device)
        inputs = bench.batches['plain'][0]
        dtype = teacher_autocast_dtype(bench.teacher_autocast)

        def forward() -> None:
            with torch.no_grad(), autocast_or_not(inputs.device.type, dtype):
                dense_head(teacher)(teacher.extract_feat(inputs))
        return forward
    if run == 'student':
        model = MODELS.build(bench.student)
        model.load_state_dict(torch.load(bench.student_checkpoint, map_location='cpu'))
        model.to(bench.device).train()
    else:
        model = build_distiller(bench, run)
    optim_wrapper = build_optim_wrapper(model, copy.deepcopy(bench.optim_wrapper))
    inputs, samples = run_batch(bench, run)

    def train_step() -> None:
        with optim_wrapper.optim_context(model):
            losses = model.loss(inputs, samples)
        loss, _ = model.parse_losses(losses)
        if not torch.isfinite(loss):
            raise FloatingPointError(f'{run}: the training loss is {float(loss)}')
        optim_wrapper.update_params(loss)
    return train_step


def nested_tensors(value) -> List[Tensor]:
    """The floating tensors in a (nested list/tuple/dict of) recorded output(s)."""
    if isinstance(value, Tensor):
        return [value] if value.is_floating_point() else []
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in nested_tensors(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in nested_tensors(item)]
    return []


def build_loss_step(bench: Bench, method: str) -> Callable[[], None]:
    """A closure running the method's loss modules alone: forward, and backward of their sum.

    The student's outputs (and its head's assignments) are recorded once during its own loss,
    the teacher's once, under no_grad; the student's then require grad as leaves, whose gradients
    (and the modules') are cleared before each backward.
    """
    torch.manual_seed(0)
    model = build_distiller(bench, method)
    inputs, samples = run_batch(bench, method)
    student_out: Dict[str, object] = {}
    with torch.no_grad():
        with recording(model.student, model.requires, student_out):
            model.student.loss(inputs, samples)
        teacher_out = model.teacher_outputs(inputs)
    leaves = [leaf.requires_grad_(True) for leaf in nested_tensors(student_out)]

    def loss_step() -> None:
        batch = model.distill_batch(inputs, samples)
        losses = [value for module in model.distill_losses
                  for value in module(student_out, teacher_out, batch).values()]
        model.distill_losses.zero_grad(set_to_none=True)
        for leaf in leaves:
            leaf.grad = None
        sum(losses).backward()
    return loss_step


def synchronize(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def time_steps(step: Callable[[], None], warmup: int, steps: int, device: str) -> List[float]:
    """Seconds of each of ``steps`` calls of ``step`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        synchronize(device)
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def build_warm(bench: Bench, run: str, warmup: int) -> Tuple[Callable[[], None], Optional[float]]:
    """``run``'s step, built and run ``warmup`` times, and on CUDA its peak allocated growth
    (MiB) over the build and warm-up (the runs built before it are idle meanwhile)."""
    cuda = bench.device.startswith('cuda')
    if cuda:
        torch.cuda.empty_cache()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    step = build_step(bench, run)
    time_steps(step, warmup, 0, bench.device)
    peak = (torch.cuda.max_memory_allocated() - before) / 2**20 if cuda else None
    return step, peak


def measure(bench: Bench, run: str, warmup: int,
            steps: int) -> Tuple[List[float], Optional[float]]:
    """Step times of ``run`` on its own (not interleaved; ``detector_step.py``'s runs) and, on
    CUDA, its peak allocated growth (MiB) over build and warm-up."""
    step, peak = build_warm(bench, run, warmup)
    times = time_steps(step, 0, steps, bench.device)
    del step
    gc.collect()
    return times, peak


def round_order(methods: Sequence[str], index: int) -> List[str]:
    """The runs of round ``index``: every method once, rotated by ``index``, each between a
    student step and a teacher forward, which alternate (``student m1 teacher m2 student ...``;
    odd rounds begin with the teacher), so that each method step has one of each beside it."""
    shift = index % len(methods)
    rotated = list(methods[shift:]) + list(methods[:shift])
    baselines = ('student', 'teacher') if index % 2 == 0 else ('teacher', 'student')
    order = [baselines[0]]
    for position, method in enumerate(rotated, 1):
        order += [method, baselines[position % 2]]
    return order


def interleaved_steps(steps: Dict[str, Callable[[], None]], methods: Sequence[str], rounds: int,
                      device: str) -> List[List[Tuple[str, float]]]:
    """``(run, seconds)`` of every step of each of ``rounds`` rounds, in :func:`round_order`."""
    timed = []
    for index in range(rounds):
        timed.append([(run, time_steps(steps[run], 0, 1, device)[0])
                      for run in round_order(methods, index)])
        print(f'    round {index + 1}/{rounds} (s): '
              + ' '.join(f'{run} {seconds:.3f}' for run, seconds in timed[-1]), flush=True)
    return timed


def run_times(timed: Sequence[Sequence[Tuple[str, float]]], run: str) -> List[float]:
    """Seconds of every step of ``run``, in the order they ran."""
    return [seconds for steps in timed for name, seconds in steps if name == run]


def neighbour_overheads(timed: Sequence[Sequence[Tuple[str, float]]],
                        method: str) -> List[float]:
    """Each step of ``method`` / (the student step + teacher forward timed just before and
    after it): on a shared machine the pace drifts over seconds, so the steps compared are
    neighbours."""
    overheads = []
    for steps in timed:
        for position, (name, seconds) in enumerate(steps):
            if name == method:
                beside = dict([steps[position - 1], steps[position + 1]])
                overheads.append(seconds / (beside['student'] + beside['teacher']))
    return overheads


def measure_losses(bench: Bench, method: str, warmup: int, steps: int) -> List[float]:
    """Times of the method's loss modules alone (:func:`build_loss_step`), in this process."""
    loss_step = build_loss_step(bench, method)
    times = time_steps(loss_step, warmup, steps, bench.device)
    del loss_step
    gc.collect()
    return times


def rss_growth(bench: Bench, run: str) -> float:
    """Growth (MiB) of this process's ``ru_maxrss`` over building ``run`` and PROBE_STEPS steps.

    Meant for a fresh process (a CPU memory probe); ``ru_maxrss`` is in KiB on Linux.
    """
    init_default_scope(bench.scope)
    torch.set_num_threads(bench.threads)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step = build_step(bench, run)
    for _ in range(PROBE_STEPS):
        step()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024


def cpu_peak_memory(bench: Bench, runs: Sequence[str]) -> Dict[str, float]:
    """:func:`rss_growth` of each run, each in a fresh process from a preloaded fork server.

    A probe the system kills (out of memory) is reported and gives NaN; the next run goes on.
    """
    context = get_context('forkserver')
    context.set_forkserver_preload(PRELOAD)
    peaks = {}
    for run in runs:
        print(f'memory probe: {run} ({PROBE_STEPS} steps in a fresh process)', flush=True)
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as executor:
            try:
                peaks[run] = executor.submit(rss_growth, bench, run).result()
            except BrokenProcessPool:
                print(f'memory probe: {run} was killed (out of memory?); its peak is NaN',
                      flush=True)
                peaks[run] = float('nan')
    return peaks


def table(results: Sequence[Result]) -> str:
    """The results as a markdown table."""
    lines = ['| run | median step (s) | min step (s) | median losses (s) | peak memory (MiB) '
             '| overhead |',
             '|---|---:|---:|---:|---:|---:|']
    for r in results:
        losses = '-' if r.losses_median_s is None else f'{r.losses_median_s:.4f}'
        overhead = '-' if r.overhead is None else f'{r.overhead:.2f}x'
        lines.append(f'| {r.run} | {r.median_s:.3f} | {r.min_s:.3f} | {losses} '
                     f'| {r.peak_memory_mib:.0f} | {overhead} |')
    return '\n'.join(lines)


#: glibc ``mallopt`` parameters
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4


def keep_freed_memory() -> None:
    """Make glibc's malloc serve every size from its heap (``M_MMAP_MAX`` 0) and keep up to
    1 GiB of freed memory (``M_TRIM_THRESHOLD``): freed tensors' pages are reused, not unmapped
    and faulted in again by the next step."""
    mallopt = getattr(ctypes.CDLL(None), 'mallopt', None)
    if mallopt is None:
        raise RuntimeError('--keep-freed-memory needs glibc (mallopt); this C library has none')
    if not (mallopt(M_MMAP_MAX, 0) and mallopt(M_TRIM_THRESHOLD, 2**30)):
        raise RuntimeError('--keep-freed-memory: mallopt refused M_MMAP_MAX / M_TRIM_THRESHOLD')


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--suite', default='horizontal', choices=list(SUITES),
                        help='default student, teacher, methods and data (default horizontal)')
    parser.add_argument('--student', help="student config (default: the suite's)")
    parser.add_argument('--teacher', help="teacher config (default: the suite's)")
    parser.add_argument('--methods', nargs='+', choices=list(METHODS), metavar='METHOD',
                        help=f'methods to run, of {" ".join(METHODS)} (default: the suite\'s)')
    parser.add_argument('--img-size', type=int, default=512,
                        help='images are resized to fit SIZE x SIZE (default 512)')
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--steps', type=int, default=5,
                        help='timed rounds: steps per method (default 5)')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed steps before them (default 2; MobileSAM loads in the first)')
    parser.add_argument('--device', default='cpu', choices=('cpu', 'cuda'))
    parser.add_argument('--threads', type=int,
                        help="torch's CPU threads (default: torch's own choice)")
    parser.add_argument('--teacher-autocast', choices=sorted(TEACHER_AUTOCAST_DTYPES),
                        help="run the teacher's forward under torch.autocast to this dtype, in "
                             'the teacher run and every method (default: full precision)')
    parser.add_argument('--sam-checkpoint',
                        help='MobileSAM vit_t weights for the EDE methods (default: random)')
    parser.add_argument('--data-root',
                        help="data in the student config's layout (default: the suite's "
                             'synthetic copy)')
    parser.add_argument('--keep-freed-memory', action='store_true',
                        help='keep freed memory in the heap (glibc mallopt) instead of unmapping '
                             'it: steps do not fault their activations in anew')
    parser.add_argument('--out', help='write the settings and results to this JSON file')
    args = parser.parse_args(argv)
    suite = SUITES[args.suite]
    args.student = args.student or osp.join(REPO, suite.student)
    args.teacher = args.teacher or osp.join(REPO, suite.teacher)
    args.methods = args.methods or list(suite.methods)
    data_root = args.data_root or osp.join(REPO, suite.data_root)
    for name in ('img_size', 'batch_size', 'steps', 'threads'):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be at least 1')
    if args.warmup < 0:
        parser.error('--warmup must be at least 0')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is available')
    if args.sam_checkpoint and not osp.isfile(args.sam_checkpoint):
        parser.error(f'--sam-checkpoint: no file {args.sam_checkpoint}')
    if not osp.isdir(data_root):
        parser.error(f'--data-root: no folder {data_root}' + ('' if args.data_root else
                     f' (write the synthetic data with {suite.make_data})'))
    args.data_root = data_root
    return args


def prepare(args: argparse.Namespace, tmp: str) -> Tuple[Bench, List[str]]:
    """The bench (batches, configs, checkpoints in ``tmp``) and notes for the output."""
    student_cfg, teacher_cfg = Config.fromfile(args.student), Config.fromfile(args.teacher)
    scope = student_cfg.get('default_scope', 'mmdet')
    init_default_scope(scope)
    student = without_pretrained(student_cfg.model.to_dict())
    teacher = without_pretrained(teacher_cfg.model.to_dict())
    precision = (f'under torch.autocast({args.teacher_autocast})' if args.teacher_autocast
                 else 'in full precision')
    notes = [f'student: training step of {args.student}',
             f'teacher: forward of {args.teacher}, {precision} (in every method too)',
             'student and teacher weights: random (init_weights(), saved to temporary files)']
    torch.manual_seed(0)
    student_checkpoint, checkpoint = osp.join(tmp, 'student.pth'), osp.join(tmp, 'teacher.pth')
    torch.save(init_weights(MODELS.build(student)).state_dict(), student_checkpoint)
    torch.save(dict(state_dict=init_weights(MODELS.build(teacher)).state_dict()), checkpoint)

    sam_checkpoint = args.sam_checkpoint
    if any(METHODS[m][1] for m in args.methods):
        if sam_checkpoint is None:
            sam_checkpoint = osp.join(tmp, 'mobile_sam.pt')
            torch.save(sam_model_registry['vit_t']().state_dict(), sam_checkpoint)
            notes.append('MobileSAM weights: random (no --sam-checkpoint); the time is the same')
        else:
            notes.append(f'MobileSAM weights: {sam_checkpoint}')
    losses = {m: method_losses(m, student['neck']['out_channels'],
                               teacher['neck']['out_channels'], sam_checkpoint)
              for m in args.methods}

    preprocessor = MODELS.build(student['data_preprocessor']).to(args.device)
    raw, paths = load_batch(student_cfg, args.data_root, args.img_size, args.batch_size)
    data = preprocessor(raw, training=True)
    batches = {'plain': (data['inputs'], data['data_samples'])}
    if 'ifkd-ede-cached' in args.methods:
        prior_dir = osp.join(tmp, 'priors')
        sam = build_mobile_sam(sam_checkpoint).to(args.device)
        precompute_priors(sam, paths, prior_dir)
        del sam
        data = preprocessor(load_batch(student_cfg, args.data_root, args.img_size,
                                       args.batch_size, prior_dir)[0], training=True)
        batches['cached'] = (data['inputs'], data['data_samples'])
    inputs, samples = batches['plain']
    boxes = sum(len(sample.gt_instances) for sample in samples)
    notes.append(f'batch: the first {len(paths)} training images of {args.data_root} through '
                 f'the student pipeline (Resize to fit {args.img_size}, no flip) and data '
                 f'preprocessor: inputs {tuple(inputs.shape)}, {boxes} GT boxes')
    bench = Bench(student=student, student_checkpoint=student_checkpoint,
                  teacher=dict(config=teacher, checkpoint=checkpoint),
                  optim_wrapper=student_cfg.optim_wrapper.to_dict(), losses=losses,
                  batches=batches, device=args.device, threads=torch.get_num_threads(),
                  scope=scope, teacher_autocast=args.teacher_autocast)
    return bench, notes


def main(argv: Optional[Sequence[str]] = None) -> List[Result]:
    """Run the benchmark, print the table (and write ``--out``); returns the rows."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.keep_freed_memory:
        keep_freed_memory()
    runs = ['student', 'teacher', *args.methods]
    with tempfile.TemporaryDirectory(prefix='distill_step_') as tmp:
        bench, notes = prepare(args, tmp)
        steps, peaks = {}, {}
        for i, run in enumerate(runs, 1):
            print(f'[{i}/{len(runs)}] {run}: build and {args.warmup} warm-up steps', flush=True)
            steps[run], peaks[run] = build_warm(bench, run, args.warmup)
        print(f'{args.steps} timed rounds of one step of each method, each between a student '
              'step and a teacher forward', flush=True)
        timed = interleaved_steps(steps, args.methods, args.steps, args.device)
        del steps
        gc.collect()
        loss_times = {}
        for method in args.methods:
            loss_times[method] = measure_losses(bench, method, args.warmup, args.steps)
            print(f'{method}: loss modules alone (s): '
                  + ' '.join(f'{t:.3f}' for t in loss_times[method]), flush=True)
        if args.device == 'cpu':
            peaks = cpu_peak_memory(bench, runs)
    times = {run: run_times(timed, run) for run in runs}
    results = [Result(run=run, median_s=statistics.median(times[run]), min_s=min(times[run]),
                      times_s=times[run], peak_memory_mib=peaks[run],
                      overhead=(statistics.median(neighbour_overheads(timed, run))
                                if run in METHODS else None),
                      losses_median_s=(statistics.median(loss_times[run]) if run in loss_times
                                       else None),
                      losses_times_s=loss_times.get(run))
               for run in runs]
    if args.device == 'cuda':
        device = torch.cuda.get_device_name()
        memory = ('torch.cuda.max_memory_allocated growth over build, warm-up and timed steps, '
                  'in this process')
    else:
        device = f'{platform.processor() or platform.machine()}, threads: {torch.get_num_threads()}'
        memory = (f'ru_maxrss growth over build and {PROBE_STEPS} steps, each run in a fresh '
                  'process')
    notes += [f'device: {args.device} ({device}; load average at the end '
              f'{os.getloadavg()[0]:.1f}), torch {torch.__version__}',
              f'step time: median (and min) of the timed steps after {args.warmup} warm-up '
              f'ones: {args.steps} rounds of one step of each method, with a student step or a '
              'teacher forward, alternately, before, between and after them',
              "losses: median time of the method's loss modules alone (forward and backward of "
              'their sum on student and teacher outputs recorded once), as many calls',
              f'peak memory: {memory}',
              'allocator: ' + ('freed memory kept in the heap (--keep-freed-memory)'
                               if args.keep_freed_memory else "glibc's defaults"),
              'overhead: median over the method steps of step / (the student step + teacher '
              'forward timed just before and after it)']
    print('\n' + table(results) + '\n\n' + '\n'.join(notes), flush=True)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(settings=dict(vars(args), notes=notes),
                           results=[asdict(r) for r in results]), f, indent=2)
    return results


if __name__ == '__main__':
    main()
