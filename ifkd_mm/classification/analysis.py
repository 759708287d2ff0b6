"""Section 4.4-4.5 analyses of a trained classifier: Grad-CAM (Figure 10), t-SNE (Figures 11-12)
and parameters / FLOPs / inference time (Table 8)."""
import time
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


def grad_cam(model: nn.Module, inputs: Tensor,
             targets: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """Grad-CAM (Selvaraju et al. 2020) of an mmpretrain ``ImageClassifier``.

    On the last backbone feature map ``A`` (``(N, K, h, w)``), the map of class ``c`` is
    ``ReLU(sum_k a_k A_k)`` with ``a_k`` the spatial mean of ``d y_c / d A_k``; it is upsampled
    to the input size and divided by its maximum. ``targets`` default to the predicted classes.
    Returns ``(maps (N, H, W) in [0, 1], logits (N, C))``.
    """
    inputs = inputs.detach().requires_grad_(True)
    with torch.enable_grad():
        feats = model.backbone(inputs)
        feature_map = feats[-1]
        neck_out = model.neck(feats) if getattr(model, 'neck', None) is not None else feats
        logits = model.head(neck_out)
        if targets is None:
            targets = logits.argmax(dim=1)
        score = logits.gather(1, targets.view(-1, 1).to(logits.device)).sum()
        grads = torch.autograd.grad(score, feature_map)[0]
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * feature_map).sum(dim=1, keepdim=True)).detach()
    cam = F.interpolate(cam, size=inputs.shape[-2:], mode='bilinear', align_corners=False)[:, 0]
    peak = cam.flatten(1).max(dim=1).values.clamp_min(1e-12)
    return cam / peak[:, None, None], logits.detach()


def conditional_probabilities(sq_dist: np.ndarray, perplexity: float, tol: float = 1e-5,
                              max_steps: int = 100) -> np.ndarray:
    """t-SNE's ``p_{j|i}``: per row a Gaussian whose precision is found by bisection so that its
    entropy is ``log(perplexity)`` (natural log; van der Maaten and Hinton 2008)."""
    n = len(sq_dist)
    target = np.log(perplexity)
    probs = np.zeros((n, n))
    for i in range(n):
        d = np.delete(sq_dist[i], i)
        d = d - d.min()
        beta, lo, hi = 1.0, 0.0, np.inf
        for _ in range(max_steps):
            p = np.exp(-d * beta)
            total = p.sum()
            entropy = np.log(total) + beta * (d * p).sum() / total
            if abs(entropy - target) < tol:
                break
            if entropy > target:
                lo = beta
                beta = beta * 2 if hi == np.inf else (beta + hi) / 2
            else:
                hi = beta
                beta = (beta + lo) / 2
        probs[i, np.arange(n) != i] = p / total
    return probs


def tsne(features: np.ndarray, perplexity: float = 30.0, num_iters: int = 1000,
         learning_rate: Optional[float] = None, seed: int = 0) -> np.ndarray:
    """Exact 2-D t-SNE of ``(N, D)`` features (van der Maaten and Hinton 2008): symmetrised
    ``P``, Student-t ``Q``, early exaggeration 12 for 250 iterations, momentum 0.5 then 0.8,
    adaptive gains. ``perplexity`` is capped at ``(N - 1) / 3``; the learning rate defaults to
    ``max(N / 48, 50)`` (scikit-learn's "auto")."""
    x = np.asarray(features, dtype=np.float64)
    n = len(x)
    if n < 4:
        raise ValueError(f't-SNE needs at least 4 points, got {n}')
    perplexity = min(perplexity, (n - 1) / 3)
    if learning_rate is None:
        learning_rate = max(n / 48, 50.0)
    sq = (x ** 2).sum(1)
    sq_dist = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0)
    p = conditional_probabilities(sq_dist, perplexity)
    p = np.maximum((p + p.T) / (2 * n), 1e-12)
    rng = np.random.default_rng(seed)
    y = rng.normal(0, 1e-4, (n, 2))
    velocity, gains = np.zeros_like(y), np.ones_like(y)
    for it in range(num_iters):
        exaggeration = 12.0 if it < 250 else 1.0
        momentum = 0.5 if it < 250 else 0.8
        num = 1 / (1 + ((y[:, None, :] - y[None, :, :]) ** 2).sum(-1))
        np.fill_diagonal(num, 0)
        q = np.maximum(num / num.sum(), 1e-12)
        w = (exaggeration * p - q) * num
        grad = 4 * ((np.diag(w.sum(1)) - w) @ y)
        gains = np.where(np.sign(grad) != np.sign(velocity), gains + 0.2, gains * 0.8)
        gains = np.maximum(gains, 0.01)
        velocity = momentum * velocity - learning_rate * gains * grad
        y = y + velocity
        y = y - y.mean(0)
    return y


def count_parameters(model: nn.Module) -> int:
    """All parameters of the model (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_shape: Tuple[int, int, int, int]) -> int:
    """FLOPs of one forward pass (``mode='tensor'``) counted by mmengine's ``FlopAnalyzer``,
    which, like fvcore and the usual tables, counts one multiply-add as one FLOP."""
    from mmengine.analysis import FlopAnalyzer
    inputs = torch.zeros(input_shape, device=next(model.parameters()).device)
    analyzer = FlopAnalyzer(model, (inputs, ))
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return int(analyzer.total())


@torch.no_grad()
def inference_time(model: nn.Module, image_size: Tuple[int, int], num_images: int,
                   batch_size: int, warmup: int = 2) -> float:
    """Seconds to predict ``num_images`` random images in batches (Table 8: 6,300 NWPU45
    images), after ``warmup`` untimed batches."""
    device = next(model.parameters()).device
    batch = torch.randn(batch_size, 3, *image_size, device=device)
    for _ in range(warmup):
        model(batch, mode='tensor')
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    done = 0
    while done < num_images:
        size = min(batch_size, num_images - done)
        model(batch[:size], mode='tensor')
        done += size
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def load_trained_classifier(config: str, checkpoint: Optional[str],
                            cfg_options: Optional[dict] = None) -> Tuple[nn.Module, object]:
    """The classifier of a config (the student of an ``ERKTDistiller`` config, whose teacher is
    then not needed) with its data preprocessor, loaded strictly from ``checkpoint`` (a
    distiller checkpoint holds the student under ``student.``). Returns ``(model, cfg)``."""
    from mmengine.config import Config
    from mmengine.runner.checkpoint import load_checkpoint

    from .ensemble import build_cls_model, classifier_config

    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model_cfg = cfg.model.copy()
    revise_keys = []
    if model_cfg.type == 'ERKTDistiller':
        model_cfg = model_cfg.student.copy()
        revise_keys = [(r'^student\.', '')]
    elif model_cfg.type == 'TeacherEnsemble':
        raise ValueError(f'{config} is an ensemble: give a single classifier or a distiller')
    preprocessor = dict(cfg.get('data_preprocessor') or {})
    preprocessor.update(model_cfg.get('data_preprocessor') or {})
    model_cfg.data_preprocessor = preprocessor
    model = build_cls_model(classifier_config(model_cfg))
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True,
                        revise_keys=revise_keys)
    return model.eval(), cfg
