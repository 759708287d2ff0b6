# Faster R-CNN ResNet-18 FPN (a student of IFKD's tables 1-2) on SAR-AIRcraft-1.0.
_base_ = './faster-rcnn_r50_fpn_100e_sar-aircraft.py'
model = dict(
    backbone=dict(depth=18, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
