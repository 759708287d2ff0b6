"""Dataset readers in the official layouts, and their annotation checks."""
from .checks import AnnotationError, AnnotationWarning
from .rotated import CheckedDOTADataset, DIORRDataset
from .sam_prior import LoadSAMPrior
from .sar_aircraft import SAR_AIRCRAFT_CLASSES, SARAircraftDataset
from .scene import SceneFolderDataset, train_ratio_split
from .shiprs import ShipRSImageNetDataset, ShipRSImageNetRotatedDataset, shiprs_classes
from .subset import RandomSubsetDataset

__all__ = [
    'AnnotationError', 'AnnotationWarning', 'CheckedDOTADataset', 'DIORRDataset', 'LoadSAMPrior',
    'RandomSubsetDataset',
    'SAR_AIRCRAFT_CLASSES', 'SARAircraftDataset', 'SceneFolderDataset', 'train_ratio_split',
    'ShipRSImageNetDataset', 'ShipRSImageNetRotatedDataset', 'shiprs_classes'
]
