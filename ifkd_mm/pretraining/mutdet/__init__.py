"""MutDet pseudo-labels (section 3.1): SAM masks -> rotated boxes -> embeddings -> PCA and k-means
pseudo classes, resumable and sharded, and the dataset that reads them for pre-training."""
from .boxes import mask_to_rotated_box, masks_to_rotated_boxes
from .clustering import PseudoClasses, fit_pseudo_classes
from .dataset import (LoadMutDetPseudoLabels, MutDetPseudoLabelDataset, PackMutDetInputs,
                      ResolveMutDetPseudoLabels)
from .embeddings import BoxEmbedder
from .masks import MASK_PRESETS, SAM_VARIANTS, MaskGenerator, build_sam
from .pseudo_labels import (PSEUDO_LABEL_PARTS, ComponentMaskGenerator, assign, extract, fit,
                            summarize)

PSEUDO_LABEL_PARTS.register_module(module=MaskGenerator)
PSEUDO_LABEL_PARTS.register_module(module=BoxEmbedder)

__all__ = [
    'BoxEmbedder', 'ComponentMaskGenerator', 'LoadMutDetPseudoLabels', 'MASK_PRESETS',
    'MaskGenerator', 'MutDetPseudoLabelDataset', 'PSEUDO_LABEL_PARTS', 'PackMutDetInputs',
    'PseudoClasses', 'ResolveMutDetPseudoLabels', 'SAM_VARIANTS', 'assign', 'build_sam',
    'extract', 'fit', 'fit_pseudo_classes', 'mask_to_rotated_box', 'masks_to_rotated_boxes',
    'summarize'
]
