"""Per-image pseudo-label files: .npz archives written atomically, byte-identical across runs."""
import os
import os.path as osp
import zipfile
from typing import Dict

import numpy as np

FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # zip entries carry no wall-clock time: same data, same bytes


def write_npz(path: str, **arrays: np.ndarray) -> None:
    """Write ``arrays`` to ``path`` as an uncompressed .npz (``np.load`` reads it).

    Atomic: the archive is written to a temporary file in the same folder, flushed to disk and
    renamed over ``path``, so that an interrupted run leaves either no file or a complete one.
    Entries are sorted and stamped with a fixed date, so that equal arrays give equal bytes.
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = osp.join(folder, f'.{osp.basename(path)}.{os.getpid()}.tmp')
    with open(tmp, 'wb') as f:
        with zipfile.ZipFile(f, 'w', zipfile.ZIP_STORED) as archive:
            for name in sorted(arrays):
                info = zipfile.ZipInfo(f'{name}.npy', date_time=FIXED_DATE)
                with archive.open(info, 'w', force_zip64=True) as entry:
                    np.lib.format.write_array(entry, np.asarray(arrays[name]),
                                              allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_npz(path: str, required: tuple = ()) -> Dict[str, np.ndarray]:
    """All arrays of a pseudo-label file; a clear error when it is unreadable or lacks a field."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f'{path} is not a readable pseudo-label file ({error})') from error
    missing = [name for name in required if name not in arrays]
    if missing:
        raise ValueError(f'{path} lacks the field(s) {missing} (has {sorted(arrays)})')
    return arrays


def read_fields(path: str, fields: tuple) -> Dict[str, np.ndarray]:
    """Only ``fields`` of a pseudo-label file (an .npz reads its entries lazily)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [name for name in fields if name not in data.files]
            if missing:
                raise ValueError(f'{path} lacks the field(s) {missing} (has {sorted(data.files)})')
            return {name: data[name] for name in fields}
    except (OSError, zipfile.BadZipFile) as error:
        raise ValueError(f'{path} is not a readable pseudo-label file ({error})') from error
