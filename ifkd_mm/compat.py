"""Run-time compatibility of the pinned stack (see ../shared/docs/STACK.md).

torch >= 2.6 unpickles checkpoints with ``weights_only=True`` by default, and mmengine 0.10.7 calls
``torch.load`` without the argument, so resuming an mmengine checkpoint fails on the message hub's
``HistoryBuffer``, the numpy scalars and arrays of its log history, and the statistics methods a
``HistoryBuffer`` pickles as ``getattr(HistoryBuffer, 'mean')``. Instead of turning the safe loader
off, exactly these are allow-listed; ``getattr`` is not: its pickled name is bound to
:func:`history_buffer_statistic`, which only returns ``HistoryBuffer`` statistics methods.

An empty numpy array (an empty ``HistoryBuffer``, an empty array in ``meta``) also pickles a call
``bytes()``: ``torch.save`` writes pickle protocol 2, which stores an empty ``bytes`` object that
way (other ``bytes`` go through ``_codecs.encode``, which torch allows). The name ``bytes`` is bound
to :func:`empty_bytes`, which makes nothing but ``b''``.
"""
import pickle
from typing import Callable, List, Union

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer


def history_buffer_statistic(owner: type, name: str) -> Callable:
    """``getattr(HistoryBuffer, name)`` for a statistics method, and nothing else."""
    if owner is HistoryBuffer and callable(getattr(HistoryBuffer, name, None)) and \
            not name.startswith('_'):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f'refusing getattr({owner!r}, {name!r}) in a checkpoint: only '
                                 'HistoryBuffer statistics methods are allowed')


def empty_bytes(*args) -> bytes:
    """``bytes()`` (an empty ``bytes`` object, as protocol 2 pickles it), and nothing else."""
    if args:
        raise pickle.UnpicklingError(f'refusing bytes{args!r} in a checkpoint: only the empty '
                                     'bytes() of an empty numpy array is allowed')
    return b''


def mmengine_checkpoint_globals() -> List[Union[Callable, tuple]]:
    """What an mmengine checkpoint pickles besides tensors and builtins, as safe globals."""
    multiarray = (getattr(np, '_core', None) or np.core).multiarray
    dtype_classes = [type(np.dtype(name)) for name in (
        'float16', 'float32', 'float64', 'int8', 'int16', 'int32', 'int64', 'uint8', 'bool')]
    # numpy 1.x checkpoints name the numpy 2 ``numpy._core`` functions ``numpy.core``.
    numpy1_names = [(multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
                    (multiarray.scalar, 'numpy.core.multiarray.scalar')]
    return [HistoryBuffer, np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar,
            *dtype_classes, *numpy1_names, (history_buffer_statistic, '__builtin__.getattr'),
            (history_buffer_statistic, 'builtins.getattr'), (empty_bytes, 'builtins.bytes')]


def allow_mmengine_checkpoints() -> None:
    """Allow-list :func:`mmengine_checkpoint_globals` for ``torch.load``."""
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is not None:
        add_safe_globals(mmengine_checkpoint_globals())
