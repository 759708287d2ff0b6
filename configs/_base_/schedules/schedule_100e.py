# IFKD's training schedule (ifkd.txt section 4.1: "following 1x learning rate schedule and the
# default configuration file and train 100 epochs"): mmdetection's 1x recipe stretched to 100
# epochs, the LR steps kept at the 1x schedule's 8/12 and 11/12 of training, 500-iteration
# linear warm-up, SGD momentum 0.9, weight decay 1e-4.
# Learning rate: the paper states no batch size or GPU count, so it is that of mmdetection's
# default configs, 8 GPUs x 2 images = a total batch of 16: lr 0.01 for RetinaNet (here) and
# 0.02 for Faster R-CNN (set in its detector configs). auto_scale_lr is on with
# base_batch_size=16, so mmengine scales the lr linearly to the actual total batch
# (GPUs x train_dataloader.batch_size): one GPU with 2 images trains RetinaNet at 0.00125 and
# Faster R-CNN at 0.0025, the rates the paper's batch implies.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=100, by_epoch=True, milestones=[67, 92], gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
auto_scale_lr = dict(enable=True, base_batch_size=16)
