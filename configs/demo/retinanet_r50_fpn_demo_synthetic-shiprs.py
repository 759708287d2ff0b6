# RetinaNet ResNet-50 with the demo student's settings (the benchmark's default teacher shape; the
# demo itself distils from ResNet-34, which learns faster from scratch in its time budget).
_base_ = './retinanet_r18_fpn_demo_synthetic-shiprs.py'
model = dict(backbone=dict(depth=50), neck=dict(in_channels=[256, 512, 1024, 2048]))
