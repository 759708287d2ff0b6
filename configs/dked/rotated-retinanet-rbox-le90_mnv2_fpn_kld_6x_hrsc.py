# DKED's lightweight MobileNetV2 student on HRSC2016, trained alone (the baseline).
# Stages 2, 3, 5 and 7 of MobileNetV2 (24, 32, 96, 320 channels) sit at strides 4, 8, 16, 32,
# like ResNet's C2-C5: the FPN keeps start_level=1 (P3-P7).
_base_ = './rotated-retinanet-rbox-le90_r50_fpn_kld_6x_hrsc.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmdet.MobileNetV2',
        out_indices=(1, 2, 4, 6),
        act_cfg=dict(type='ReLU6'),
        norm_cfg=dict(type='BN', requires_grad=True),
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://mmdet/mobilenet_v2')),
    neck=dict(in_channels=[24, 32, 96, 320]))
