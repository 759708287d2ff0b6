"""Confusion matrix figures (section 4.2, Figures 8-9) written by a hook after evaluation."""
import os.path as osp
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

METRIC_KEY = 'confusion_matrix/result'


def save_confusion_matrix(matrix, out_file: str, classes: Optional[Sequence[str]] = None,
                          values_up_to: int = 30) -> np.ndarray:
    """Save the row-normalised confusion matrix (rows: true class, so the diagonal holds each
    class's accuracy, 1.0 = 100% as in Figures 8-9) as a PNG; returns the normalised matrix.

    Cells are annotated when there are at most ``values_up_to`` classes; the title gives the
    overall accuracy (eq. 13, trace / total).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    counts = np.asarray(matrix.cpu() if isinstance(matrix, torch.Tensor) else matrix,
                        dtype=np.float64)
    normalised = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    num = len(counts)
    size = max(4.0, 0.35 * num + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(normalised, cmap='Blues', vmin=0, vmax=1, interpolation='nearest')
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    labels = list(classes) if classes is not None else [str(i) for i in range(num)]
    ax.set_xticks(range(num), labels, rotation=90, fontsize=7 if num > 20 else 9)
    ax.set_yticks(range(num), labels, fontsize=7 if num > 20 else 9)
    ax.set_xlabel('Predicted label')
    ax.set_ylabel('True label')
    overall = counts.trace() / max(counts.sum(), 1)
    ax.set_title(f'OA = {100 * overall:.2f}% ({int(counts.sum())} samples)')
    if num <= values_up_to:
        for i in range(num):
            for j in range(num):
                if counts[i, j]:
                    ax.text(j, i, f'{normalised[i, j]:.2f}', ha='center', va='center',
                            fontsize=7, color='white' if normalised[i, j] > 0.5 else 'black')
    fig.tight_layout()
    fig.savefig(out_file, dpi=150)
    plt.close(fig)
    return normalised


@HOOKS.register_module()
class ConfusionMatrixPlotHook(Hook):
    """Save the ``ConfusionMatrix`` metric as ``<work_dir>/confusion_matrix.png`` after testing
    (and as ``confusion_matrix_val.png`` after each validation), with the dataset's class names.
    """

    priority = 'LOW'

    def _save(self, runner, metrics: Optional[Dict], name: str) -> None:
        if not metrics or METRIC_KEY not in metrics or not is_main_process():
            return
        loader = runner.test_dataloader if name == 'confusion_matrix' else runner.val_dataloader
        classes = loader.dataset.metainfo.get('classes')
        out_file = osp.join(runner.work_dir, f'{name}.png')
        save_confusion_matrix(metrics[METRIC_KEY], out_file, classes)
        runner.logger.info(f'confusion matrix saved to {out_file}')

    def after_val_epoch(self, runner, metrics: Optional[Dict] = None) -> None:
        self._save(runner, metrics, 'confusion_matrix_val')

    def after_test_epoch(self, runner, metrics: Optional[Dict] = None) -> None:
        self._save(runner, metrics, 'confusion_matrix')
