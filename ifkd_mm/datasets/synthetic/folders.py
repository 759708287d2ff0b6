"""Dataset folder bookkeeping: official folder names, preparing a folder, the ``.complete``
marker that stamps a finished folder with its parameters, and plain list files."""
from __future__ import annotations

import json
import os
import shutil
from typing import Dict, Optional, Sequence

GENERATOR = 'ifkd_mm.datasets.synthetic'
GENERATOR_VERSION = 1
MARKER = '.complete'
IN_PROGRESS = '.incomplete'

DATASET_FOLDERS: Dict[str, str] = {
    'shiprs': 'ShipRSImageNet', 'sar_aircraft': 'SAR-AIRcraft-1.0', 'dota': 'DOTA',
    'dior_r': 'DIOR-R', 'hrsc2016': 'HRSC2016', 'nwpu45': 'NWPU-RESISC45', 'aid': 'AID',
    'afgr50': 'AFGR50'}


def prepare_folder(path: str) -> None:
    """Empty ``path`` if it holds an earlier synthetic dataset; refuse to touch anything else."""
    if os.path.isdir(path) and os.listdir(path):
        if not (os.path.exists(os.path.join(path, MARKER)) or
                os.path.exists(os.path.join(path, IN_PROGRESS))):
            raise FileExistsError(f'{path} exists and is not a synthetic dataset written by '
                                  f'{GENERATOR}; refusing to overwrite it')
        shutil.rmtree(path)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, IN_PROGRESS), 'w') as f:
        f.write('generation in progress\n')


def finish_folder(path: str, dataset: str, params: dict, counts: dict) -> str:
    """Write the ``.complete`` marker (parameters and counts) and drop ``.incomplete``."""
    marker = dict(generator=GENERATOR, version=GENERATOR_VERSION, dataset=dataset,
                  params=params, counts=counts)
    with open(os.path.join(path, MARKER), 'w') as f:
        json.dump(marker, f, indent=1)
        f.write('\n')
    os.remove(os.path.join(path, IN_PROGRESS))
    return path


def read_marker(path: str) -> Optional[dict]:
    """The ``.complete`` marker of a generated dataset folder, or ``None``."""
    try:
        with open(os.path.join(path, MARKER)) as f:
            marker = json.load(f)
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and marker.get('generator') == GENERATOR else None


def write_lines(path: str, items: Sequence[str]) -> None:
    """Write ``items`` one per line (list files such as ``ImageSets/*.txt``)."""
    with open(path, 'w') as f:
        f.write(''.join(f'{item}\n' for item in items))
