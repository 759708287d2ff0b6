# The demo's teacher: RetinaNet ResNet-34, otherwise the demo student's settings, trained twice
# as long (6 epochs, the students 3): a teacher ahead of the student it teaches, within the
# demo's time on 2 CPU cores (ResNet-50 from scratch learns too slowly for that budget).
_base_ = './retinanet_r18_fpn_demo_synthetic-shiprs.py'
max_epochs = 6
model = dict(backbone=dict(depth=34))
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[max_epochs * 3 // 4], gamma=0.1)
]
