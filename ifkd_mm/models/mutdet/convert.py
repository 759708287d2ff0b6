"""Weight transfer from MutDet pre-training to ARS-DETR fine-tuning (MutDet section 3.5, 4.1).

Pre-training trains the mutual enhancement module (eq. 1), the embedding head of the contrastive
alignment loss (eq. 2-3) and classifiers over the 256 pseudo classes; fine-tuning is a plain
ARS-DETR that has none of the first two and its own classes. The public code loads the pre-trained
checkpoint non-strictly and lets mismatched class heads be skipped with a log line; here the
pre-training-only and pseudo-class weights are removed explicitly (:func:`convert_pretrained`) and
the load says exactly what it skipped (:func:`load_report`).
"""
from collections import OrderedDict
from typing import Callable, Dict, List, Sequence, Tuple

from torch import Tensor, nn


def select_entries(state_dict: Dict[str, Tensor],
                   keep: Callable[[str], bool]) -> Dict[str, Tensor]:
    """The entries of ``state_dict`` whose key ``keep`` accepts, in order, with the module versions
    (``_metadata``) that ``load_state_dict`` hands to the modules (BatchNorm, for example)."""
    selected = OrderedDict((key, value) for key, value in state_dict.items() if keep(key))
    metadata = getattr(state_dict, '_metadata', None)
    if metadata is not None:
        selected._metadata = metadata
    return selected


def convert_pretrained(state_dict: Dict[str, Tensor],
                       drop_prefixes: Sequence[str]) -> Tuple[Dict[str, Tensor], List[str]]:
    """``(kept, dropped)``: the entries of ``state_dict`` whose key starts with none of
    ``drop_prefixes`` (same order, same tensors) and the sorted keys that were removed.

    Raises ``ValueError`` for an empty prefix, a prefix that matches no key (a wrong name would
    otherwise silently carry the weights over) and a result without any tensor.
    """
    prefixes = tuple(drop_prefixes)
    if not prefixes:
        raise ValueError('drop_prefixes is empty: name at least one key prefix to drop')
    for prefix in prefixes:
        if not prefix:
            raise ValueError("drop_prefixes holds an empty prefix '', which would drop every key")
        if not any(key.startswith(prefix) for key in state_dict):
            raise ValueError(f'drop prefix {prefix!r} matches no key of the state dict '
                             f'({len(state_dict)} keys)')
    kept = select_entries(state_dict, lambda key: not key.startswith(prefixes))
    if not kept:
        raise ValueError(f'dropping {list(prefixes)} leaves no weights: every key of the state '
                         'dict starts with one of them')
    dropped = sorted(key for key in state_dict if key.startswith(prefixes))
    return kept, dropped


def load_report(model: nn.Module, state_dict: Dict[str, Tensor]) -> Dict[str, List[str]]:
    """Load ``state_dict`` into ``model`` non-strictly; the sorted keys that the model has and the
    state dict lacks (``missing``), that the model does not have (``unexpected``), and that both
    have with different shapes (``shape_mismatch``: skipped, the model keeps its own values)."""
    model_shapes = {key: value.shape for key, value in model.state_dict().items()}
    mismatched = {key for key, value in state_dict.items()
                  if key in model_shapes and tuple(value.shape) != tuple(model_shapes[key])}
    result = model.load_state_dict(select_entries(state_dict, lambda key: key not in mismatched),
                                   strict=False)
    return dict(missing=sorted(set(result.missing_keys) - mismatched),
                unexpected=sorted(result.unexpected_keys), shape_mismatch=sorted(mismatched))
