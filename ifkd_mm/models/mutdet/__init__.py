"""MutDet: mutually optimizing detection pre-training on ARS-DETR (ECCV 2024)."""
from .contrastive import EmbeddingHead, contrastive_alignment_loss
from .convert import convert_pretrained, load_report
from .detector import MutDet
from .enhancement import MutualEnhancementModule, pad_objects

__all__ = [
    'EmbeddingHead', 'MutDet', 'MutualEnhancementModule', 'contrastive_alignment_loss',
    'convert_pretrained', 'load_report', 'pad_objects'
]
