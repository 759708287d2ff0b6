# IFKD's training schedule (section 4.1): mmdetection's 1x recipe (SGD 0.02 for a total batch of
# 16, 500-iteration linear warm-up, step decay x0.1) stretched to 100 epochs, the steps kept at
# the 1x schedule's 8/12 and 11/12 of training.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=100, by_epoch=True, milestones=[67, 92], gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001))
auto_scale_lr = dict(enable=False, base_batch_size=16)
