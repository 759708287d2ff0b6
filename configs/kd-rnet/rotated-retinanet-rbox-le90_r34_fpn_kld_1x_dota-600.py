# KD-RNet's ResNet-34 student trained alone (Table II baseline), teacher's settings otherwise.
_base_ = './rotated-retinanet-rbox-le90_r50_fpn_kld_1x_dota-600.py'
model = dict(
    backbone=dict(depth=34, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet34')),
    neck=dict(in_channels=[64, 128, 256, 512]))
