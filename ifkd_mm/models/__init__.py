"""Detectors of ifkd_mm (registered in mmrotate's registries)."""
from . import ars_detr, mutdet  # noqa: F401
