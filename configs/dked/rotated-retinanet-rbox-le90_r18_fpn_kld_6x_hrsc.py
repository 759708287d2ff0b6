# DKED's lightweight ResNet-18 student on HRSC2016, trained alone (the baseline).
_base_ = './rotated-retinanet-rbox-le90_r50_fpn_kld_6x_hrsc.py'
model = dict(
    backbone=dict(depth=18, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
