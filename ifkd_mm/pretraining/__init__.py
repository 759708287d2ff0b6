"""Detection pre-training (MutDet)."""
from . import mutdet  # noqa: F401
