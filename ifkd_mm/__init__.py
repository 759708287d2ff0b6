"""ifkd_mm: knowledge distillation for remote-sensing detection, as an OpenMMLab plugin.

Importing the package (``custom_imports=dict(imports=['ifkd_mm'])``) registers its modules in the
mmdet, mmrotate and mmpretrain registries and makes mmengine checkpoints loadable under torch's
``weights_only`` default.
"""
from .compat import allow_mmengine_checkpoints

allow_mmengine_checkpoints()

# registers the modules
from . import (classification, datasets, distillation, engine, evaluation,  # noqa: E402,F401
               models, pretraining)

__version__ = '0.1.0'
