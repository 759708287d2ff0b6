# RetinaNet MobileNetV2 FPN (a student of IFKD's tables 1-3) on ShipRSImageNet level 3.
# Stages 2, 3, 5 and 7 of MobileNetV2 (24, 32, 96, 320 channels) sit at strides 4, 8, 16, 32.
_base_ = './retinanet_r50_fpn_100e_shiprs.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        out_indices=(1, 2, 4, 6),
        act_cfg=dict(type='ReLU6'),
        norm_cfg=dict(type='BN', requires_grad=True),
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://mmdet/mobilenet_v2')),
    neck=dict(in_channels=[24, 32, 96, 320]))
