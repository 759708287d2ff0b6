# Demo teacher member: efficientnet-b0 from scratch on the synthetic NWPU-RESISC45 folders (64 px,
# CPU).
_base_ = ['./_base_/synthetic-nwpu45_64px.py', '../_base_/models/efficientnet-b0.py']
model = dict(backbone=dict(init_cfg=None), head=dict(num_classes=5))
work_dir = 'work_dirs/erkt-net/demo/efficientnet-b0_demo_synthetic-nwpu45'
