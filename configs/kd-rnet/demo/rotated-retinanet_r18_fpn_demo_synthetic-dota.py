# Demo student: rotated RetinaNet ResNet-18 (focal + KLD) trained from scratch on the synthetic
# DOTA-layout data (tools/data/make_synthetic.py --datasets dota), cut into 128x128 patches like
# KD-RNet's 600x600 ones (overlap 32 for training, 64 for testing; 600/150/300 scaled):
#   python tools/data/split_dota.py --src data/synthetic/DOTA --out data/synthetic/DOTA/split_128 \
#       --size 128 --train-overlap 32 --test-overlap 64 --splits train:trainval val:val
# Narrow FPN/head (64 channels, 1 stacked conv) for 2 CPU cores. Validation/test: the val patches
# merged per image and scored against the unsplit val/labelTxt (MergedDOTAMetric).
_base_ = '../rotated-retinanet-rbox-le90_r18_fpn_kld_1x_dota-600.py'
data_root = 'data/synthetic/DOTA/split_128/'
img_scale = (128, 128)
num_classes = 15  # DOTA's class list (the synthetic data uses 4 of them)
max_epochs = 24

model = dict(
    backbone=dict(frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(out_channels=64),
    bbox_head=dict(num_classes=num_classes, in_channels=64, feat_channels=64, stacked_convs=1),
    test_cfg=dict(nms_pre=500, max_per_img=100))

train_pipeline = [
    dict(type='mmdet.LoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'),
    dict(type='ConvertBoxType', box_type_mapping=dict(gt_bboxes='rbox')),
    dict(type='mmdet.Resize', scale=img_scale, keep_ratio=True),
    dict(type='mmdet.RandomFlip', prob=0.75, direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='mmdet.PackDetInputs')
]
val_pipeline = [
    dict(type='mmdet.LoadImageFromFile'),
    dict(type='mmdet.Resize', scale=img_scale, keep_ratio=True),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'),
    dict(type='ConvertBoxType', box_type_mapping=dict(gt_bboxes='rbox')),
    dict(type='mmdet.PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=4, num_workers=1,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4, num_workers=1,
    dataset=dict(data_root=data_root, pipeline=val_pipeline))
# the labelled val patches replace the base's unlabelled test split and its submission-only metric
test_dataloader = dict(
    batch_size=4, num_workers=1,
    dataset=dict(data_root=data_root, ann_file='val/annfiles/',
                 data_prefix=dict(img_path='val/images/'), pipeline=val_pipeline))
val_evaluator = dict(ann_dir='data/synthetic/DOTA/val/labelTxt/')
test_evaluator = dict(
    _delete_=True, type='MergedDOTAMetric', ann_dir='data/synthetic/DOTA/val/labelTxt/',
    iou_thrs=[0.5], eval_mode='11points')

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
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=1, max_keep_ckpts=2))
# The same seed gives the same demo numbers: weights, sampling and augmentation are seeded
# (--cfg-options randomness.seed=N for another run).
randomness = dict(seed=0, deterministic=False)
