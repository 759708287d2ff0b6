"""Deterministic synthetic remote-sensing datasets, written in the datasets' official layouts.

Every maker draws small images (sea / ground texture for optical data, speckled dark clutter for
SAR) with 1-4 oriented objects whose classes differ in *shape details* (bow form, superstructure
layout, wing sweep, engine placement, tail form, ...), and writes them exactly as the real
dataset is laid out on disk, so that the real readers (mmdet / mmrotate / mmpretrain) load them.

Only numpy, opencv and the standard library are used (no torch, no mm* packages), so the package
can run before the training stack is installed; ``tools/data/make_synthetic.py`` loads it by path,
without ``ifkd_mm/__init__``, so its modules import each other relatively and nothing else of
``ifkd_mm``. The same arguments give byte-identical files: every image has its own
``numpy.random.default_rng([seed, dataset, split, index])`` stream.

Modules: ``classes`` (class lists), ``drawing`` (random streams, polygon primitives, noise,
filling), ``shapes`` / ``aircraft`` (object templates), ``objects`` (placement and the geometry
conventions), ``render`` (optical and SAR images), ``folders`` (folder names, ``.complete``
marker), ``xml_annotations`` / ``rounding`` (annotation writing), ``detection`` (shared by the
detection layouts), one module per layout (``shiprs``, ``sar_aircraft``, ``dota``, ``dior_r``,
``hrsc2016``, ``scene_folders`` with ``scene_patterns``) and ``registry`` (``MAKERS``,
``ensure_dataset``).
"""
from .classes import (AFGR50_CLASSES, AID_CLASSES, DIOR_CLASSES, DIOR_USED_CLASSES, DOTA_CLASSES,
                      DOTA_USED_CLASSES, HRSC_USED_CLASSES, NWPU45_CLASSES, SAR_AIRCRAFT_CLASSES,
                      SAR_AIRCRAFT_USED_CLASSES, SHIPRS_CLASSES, SHIPRS_HIERARCHY,
                      SHIPRS_LEVEL_CLASSES, SHIPRS_REAL_LEVEL_CLASSES)
from .dior_r import make_dior_r
from .dota import make_dota
from .drawing import image_rng
from .folders import DATASET_FOLDERS, read_marker
from .hrsc2016 import make_hrsc2016
from .objects import SynthObject, place_objects
from .registry import DETECTION_DATASETS, MAKERS, SCENE_DATASETS, effective_params, ensure_dataset
from .render import render_optical, render_sar
from .sar_aircraft import make_sar_aircraft
from .scene_folders import make_afgr50, make_aid, make_nwpu45, make_scene_folders
from .shapes import Shape
from .shiprs import make_shiprs

__all__ = [
    'AFGR50_CLASSES', 'AID_CLASSES', 'DATASET_FOLDERS', 'DETECTION_DATASETS', 'DIOR_CLASSES',
    'DIOR_USED_CLASSES', 'DOTA_CLASSES', 'DOTA_USED_CLASSES', 'HRSC_USED_CLASSES', 'MAKERS',
    'NWPU45_CLASSES', 'SAR_AIRCRAFT_CLASSES', 'SAR_AIRCRAFT_USED_CLASSES', 'SCENE_DATASETS',
    'SHIPRS_CLASSES', 'SHIPRS_HIERARCHY', 'SHIPRS_LEVEL_CLASSES', 'SHIPRS_REAL_LEVEL_CLASSES',
    'Shape', 'SynthObject', 'effective_params', 'ensure_dataset', 'image_rng', 'make_aid',
    'make_afgr50', 'make_dior_r', 'make_dota', 'make_hrsc2016', 'make_nwpu45',
    'make_sar_aircraft', 'make_scene_folders', 'make_shiprs', 'place_objects', 'read_marker',
    'render_optical', 'render_sar',
]
