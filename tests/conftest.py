"""Shared fixtures: small synthetic datasets written once per session in the official layouts."""
import os
import os.path as osp
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault('OMP_NUM_THREADS', '2')

SMALL = dict(num_train=6, num_val=3, img_size=128, seed=0)


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory) -> str:
    """Root folder holding every synthetic detection dataset (small) and the scene folders."""
    from ifkd_mm.datasets import synthetic

    root = str(tmp_path_factory.mktemp('synthetic'))
    for name in ('shiprs', 'sar_aircraft', 'dota', 'dior_r', 'hrsc2016'):
        synthetic.MAKERS[name](root, **SMALL)
    synthetic.make_scene_folders(root, 'NWPU-RESISC45', ('airplane', 'beach', 'bridge'),
                                 per_class=10, img_size=32, seed=0)
    return root


@pytest.fixture(autouse=True)
def mmdet_scope():
    """Every test starts in the mmdet scope (tests of other scopes switch themselves)."""
    from mmengine.registry import init_default_scope

    init_default_scope('mmdet')
