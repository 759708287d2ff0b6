"""IFKD (ACM MM 2024): EDE, FDR and HSM, and the feature and head distillation losses."""
from .ede import ExternalDisturbanceEnhancement
from .fdr import FrequencyDomainReconstruction
from .hsm import HyperbolicSimilarityMask
from .losses import IFKDFeatureLoss, IFKDHeadLoss

__all__ = [
    'ExternalDisturbanceEnhancement', 'FrequencyDomainReconstruction', 'HyperbolicSimilarityMask',
    'IFKDFeatureLoss', 'IFKDHeadLoss'
]
