# The demo's teacher: RetinaNet ResNet-50, otherwise the demo student's settings.
_base_ = './retinanet_r18_fpn_demo_synthetic-shiprs.py'
model = dict(backbone=dict(depth=50), neck=dict(in_channels=[256, 512, 1024, 2048]))
