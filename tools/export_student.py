"""Write the student of a distillation checkpoint as a plain detector checkpoint.

    python tools/export_student.py DISTILL_CHECKPOINT OUT.pth

The result loads with the student's own config in plain ``tools/test.py``. Training-time
modules of the distiller (adapters, auxiliary branches of the loss modules) are left out; the
teacher is never in a distillation checkpoint.
"""
import argparse
import os.path as osp
from collections import OrderedDict

import torch

import ifkd_mm  # noqa: F401  (safe loading of mmengine checkpoints)

PREFIX = 'student.'


def student_checkpoint(checkpoint: dict) -> dict:
    """The plain-student checkpoint of a distiller checkpoint (``state_dict`` and ``meta``)."""
    state_dict = checkpoint.get('state_dict', checkpoint)
    student = OrderedDict((key[len(PREFIX):], value) for key, value in state_dict.items()
                          if key.startswith(PREFIX))
    if not student:
        raise KeyError(f'no "{PREFIX}*" weights: not a DetectionDistiller checkpoint')
    meta = dict(checkpoint.get('meta', {}))
    meta['exported_from'] = 'DetectionDistiller student'
    return dict(state_dict=student, meta=meta)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint', help='checkpoint of a DetectionDistiller run')
    parser.add_argument('out', help='output file for the plain student checkpoint')
    args = parser.parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint} does not exist')
    exported = student_checkpoint(torch.load(args.checkpoint, map_location='cpu'))
    torch.save(exported, args.out)
    print(f'wrote {args.out}: {len(exported["state_dict"])} student tensors')


if __name__ == '__main__':
    main()
