# The demo's student: RetinaNet ResNet-18 FPN trained from scratch on the built-in synthetic
# ShipRSImageNet-layout data (tools/data/make_synthetic.py), sized so that tools/run_demo.sh
# (teacher, student alone, IFKD) takes about 10 minutes on 2 CPU cores. It inherits the real
# student config; for CPU speed it narrows the FPN and the head (128 channels, 2 stacked convs
# instead of 256 and 4), resizes the 256 px images to 192 px and trains for 3 epochs. The demo
# writes 192 training and 128 val images (tools/run_demo.sh: make_synthetic.py --num-train 192
# --num-val 128): with the generator's default 48 the teachers learnt half as much in as many
# iterations, and 16 val images (34 ships) moved a model's mAP by up to 0.03 (README).
_base_ = '../detectors/retinanet_r18_fpn_100e_shiprs.py'

data_root = 'data/synthetic/ShipRSImageNet/'
img_scale = (192, 192)
num_classes = 4  # the synthetic level-3 classes: see the json's categories
max_epochs = 3

model = dict(
    backbone=dict(frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(out_channels=128),
    bbox_head=dict(num_classes=num_classes, in_channels=128, feat_channels=128, stacked_convs=2))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5, direction=['horizontal', 'vertical']),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    dataset=dict(data_root=data_root, filter_cfg=dict(min_size=16), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4, num_workers=1, dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'COCO_Format/ShipRSImageNet_bbox_val_level_3.json')
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[max_epochs * 3 // 4], gamma=0.1)
]
# From scratch, AdamW converges in far fewer iterations than the pretrained-backbone SGD recipe.
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-3, weight_decay=0.05),
    clip_grad=dict(max_norm=35, norm_type=2))
# The demo keeps its own lr (tuned for batch 4 on one process): no scaling by the IFKD
# schedule's auto_scale_lr (base batch 16).
auto_scale_lr = dict(enable=False)
default_hooks = dict(
    logger=dict(interval=5),
    checkpoint=dict(interval=1, max_keep_ckpts=2))
# The same seed gives the same demo numbers: weights, sampling and augmentation are seeded
# (--cfg-options randomness.seed=N for another run).
randomness = dict(seed=0, deterministic=False)
