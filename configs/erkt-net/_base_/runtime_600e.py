# ERKT-Net schedule, runtime and pipelines (section 3.5, Table 1, Table 9).
# AdamW, lr 2e-4, weight decay 1e-6, cosine decay, batch 30 (the dataset bases), 600 epochs,
# a fixed 256 x 256 resolution for training and testing on every dataset.
max_epochs = 600
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=10)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=2e-4, weight_decay=1e-6))
param_scheduler = [
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs,
         eta_min=0, convert_to_iter_based=True)
]
auto_scale_lr = dict(base_batch_size=30)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=50, max_keep_ckpts=2, save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False))
# <work_dir>/confusion_matrix.png after tools/test.py (section 4.2)
custom_hooks = [dict(type='ConfusionMatrixPlotHook')]
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)

img_size = 256
erkt_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='PackInputs')
]
# The VSM (Table 1): eight gated functional units on single images; the ninth, CutMix with
# probability 1.0, is the batch augmentation of the data preprocessor (see the ERKT-Net configs).
# RandomResizedCrop(176) is resized back to the fixed resolution by the last Resize.
# RandomErasing fills with erase_value (RGB, 0-255): the data preprocessor's mean, which
# normalises to 0 as torchvision's default value=0 after Normalize; 0 here would erase with
# black (about -2.1 after normalisation), patches the teachers never saw.
erase_value = [123.675, 116.28, 103.53]
vsm_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='GFU', function='ColorJitter', prob=1.0,
         params=dict(brightness=0.5, contrast=0.5, saturation=0.5)),
    dict(type='GFU', function='RandomRotation', prob=1.0, params=dict(degrees=180)),
    dict(type='GFU', function='HorizontalFlip', prob=0.9),
    dict(type='GFU', function='VerticalFlip', prob=0.9),
    dict(type='GFU', function='Grayscale', prob=0.1),
    dict(type='GFU', function='AutoContrast', prob=0.1),
    dict(type='GFU', function='RandomErasing', prob=1.0, params=dict(value=erase_value)),
    dict(type='GFU', function='RandomResizedCrop', prob=0.1, params=dict(size=176)),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='PackInputs')
]
# The "usual" augmentation of the baseline (section 4.6): flips at 0.5, random erasing and random
# resized crop off, CutMix at 0.1 (the dataset bases' data_preprocessor), the rest as the VSM.
ordinary_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='GFU', function='ColorJitter', prob=1.0,
         params=dict(brightness=0.5, contrast=0.5, saturation=0.5)),
    dict(type='GFU', function='RandomRotation', prob=1.0, params=dict(degrees=180)),
    dict(type='GFU', function='HorizontalFlip', prob=0.5),
    dict(type='GFU', function='VerticalFlip', prob=0.5),
    dict(type='GFU', function='Grayscale', prob=0.1),
    dict(type='GFU', function='AutoContrast', prob=0.1),
    dict(type='PackInputs')
]
