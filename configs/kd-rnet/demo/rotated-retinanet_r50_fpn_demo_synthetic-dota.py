# Demo teacher: rotated RetinaNet ResNet-50, otherwise the demo student's settings, trained longer.
_base_ = './rotated-retinanet_r18_fpn_demo_synthetic-dota.py'
max_epochs = 36
model = dict(backbone=dict(depth=50), neck=dict(in_channels=[256, 512, 1024, 2048]))
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[max_epochs * 3 // 4], gamma=0.1)
]
