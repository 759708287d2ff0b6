"""Run-time compatibility of the pinned stack (see ../shared/docs/STACK.md).

torch >= 2.6 unpickles checkpoints with ``weights_only=True`` by default, and mmengine 0.10.7 calls
``torch.load`` without the argument, so resuming an mmengine checkpoint fails on the message hub's
``HistoryBuffer`` and the numpy scalars and arrays in its log history. Instead of turning the safe
loader off, the few classes such a checkpoint contains are allow-listed.
"""
from typing import List

import numpy as np
import torch


def mmengine_checkpoint_globals() -> List[type]:
    """Classes and functions an mmengine checkpoint pickles besides tensors and builtins."""
    from mmengine.logging.history_buffer import HistoryBuffer

    multiarray = getattr(np, '_core', np.core).multiarray
    dtype_classes = [type(np.dtype(name)) for name in (
        'float16', 'float32', 'float64', 'int8', 'int16', 'int32', 'int64', 'uint8', 'bool')]
    return [HistoryBuffer, np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar,
            *dtype_classes]


def allow_mmengine_checkpoints() -> None:
    """Allow-list the globals of :func:`mmengine_checkpoint_globals` for ``torch.load``."""
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is not None:
        add_safe_globals(mmengine_checkpoint_globals())
