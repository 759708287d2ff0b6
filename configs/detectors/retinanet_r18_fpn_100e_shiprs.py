# RetinaNet ResNet-18 FPN (a student of IFKD's tables 1-2) on ShipRSImageNet level 3.
_base_ = './retinanet_r50_fpn_100e_shiprs.py'
model = dict(
    backbone=dict(depth=18, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
