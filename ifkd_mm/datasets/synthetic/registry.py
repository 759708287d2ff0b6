"""The dataset makers by name, the parameters each records in its ``.complete`` marker, and
making a dataset only when no complete copy with the same parameters exists."""
from __future__ import annotations

import inspect
import os
from typing import Callable, Dict, Tuple

from .classes import AFGR50_CLASSES, AID_CLASSES, NWPU45_CLASSES
from .dior_r import make_dior_r
from .dota import make_dota
from .folders import DATASET_FOLDERS, GENERATOR_VERSION, IN_PROGRESS, read_marker
from .hrsc2016 import make_hrsc2016
from .sar_aircraft import make_sar_aircraft
from .scene_folders import make_afgr50, make_aid, make_nwpu45, scene_params
from .shiprs import make_shiprs

#: dataset name -> maker. Detection makers take ``(root, num_train, num_val, img_size, seed)``,
#: the scene makers (``SCENE_DATASETS``) ``(root, per_class, img_size, seed)``.
MAKERS: Dict[str, Callable[..., str]] = {
    'shiprs': make_shiprs, 'sar_aircraft': make_sar_aircraft, 'dota': make_dota,
    'dior_r': make_dior_r, 'hrsc2016': make_hrsc2016, 'nwpu45': make_nwpu45, 'aid': make_aid,
    'afgr50': make_afgr50,
}
DETECTION_DATASETS = ('shiprs', 'sar_aircraft', 'dota', 'dior_r', 'hrsc2016')
SCENE_DATASETS = ('nwpu45', 'aid', 'afgr50')


def effective_params(name: str, **kwargs) -> dict:
    """The parameters a maker records in its marker, for the given (possibly partial) kwargs."""
    maker = MAKERS[name]
    sig = inspect.signature(maker)
    kwargs = {k: v for k, v in kwargs.items() if v is not None and k in sig.parameters}
    bound = sig.bind('<root>', **kwargs)
    bound.apply_defaults()
    params = dict(bound.arguments)
    params.pop('root')
    if name in SCENE_DATASETS:  # recorded as make_scene_folders records them
        classes = {'nwpu45': NWPU45_CLASSES, 'aid': AID_CLASSES, 'afgr50': AFGR50_CLASSES}[name]
        return scene_params(DATASET_FOLDERS[name], classes, **params)
    if name == 'sar_aircraft':
        params['classes'] = list(params['classes'])
    if 'num_test' in params and params['num_test'] is None:
        params['num_test'] = params['num_val']
    return params


def ensure_dataset(name: str, root: str, force: bool = False,
                   **kwargs) -> Tuple[str, bool, dict]:
    """Make dataset ``name`` under ``root`` unless a complete copy with the same parameters is
    there. Returns ``(path, generated, marker)``; ``kwargs`` go to the maker (``None`` = default).
    """
    path = os.path.join(root, DATASET_FOLDERS[name])
    wanted = effective_params(name, **kwargs)
    marker = read_marker(path)
    if (not force and marker is not None and marker.get('version') == GENERATOR_VERSION and
            marker.get('params') == wanted and not os.path.exists(os.path.join(path,
                                                                               IN_PROGRESS))):
        return path, False, marker
    kwargs = {k: v for k, v in kwargs.items()
              if v is not None and k in inspect.signature(MAKERS[name]).parameters}
    MAKERS[name](root, **kwargs)
    return path, True, read_marker(path)
