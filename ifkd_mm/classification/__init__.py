"""ERKT-Net (remote-sensing scene classification) on mmpretrain: the teacher ensemble, the VSM
transforms, the DIST and CutMix losses, the distiller and the confusion matrix hook. Importing
the package registers them in mmpretrain's registries."""
from .distiller import ERKTDistiller
from .ensemble import (TeacherEnsemble, build_cls_model, classifier_config, combine,
                       eq14_weights, load_classifier)
from .hooks import ConfusionMatrixPlotHook, save_confusion_matrix
from .losses import CutMixCrossEntropyLoss, DISTLoss, pearson_distance
from .vsm import FIRED_KEY, GFU, VSM_FUNCTIONS

__all__ = [
    'ERKTDistiller', 'TeacherEnsemble', 'build_cls_model', 'classifier_config', 'combine',
    'eq14_weights', 'load_classifier', 'ConfusionMatrixPlotHook', 'save_confusion_matrix',
    'CutMixCrossEntropyLoss', 'DISTLoss', 'pearson_distance', 'FIRED_KEY', 'GFU', 'VSM_FUNCTIONS'
]
