# ARS-DETR demo on the synthetic DOTA-layout data cut into 128 px patches (as the rotated KD demo:
# tools/data/make_synthetic.py --datasets dota, then tools/data/split_dota.py --size 128), small
# enough for 2 CPU cores: ResNet-18 from scratch, embed dims 64, 2 + 2 layers, FFN 256, 100
# queries, 30 denoising queries, pure-PyTorch attention, AdamW 2e-4 without the backbone's 0.1.
# Validation/test: the val patches merged per image, scored against the unsplit val labelTxt.
_base_ = ['../../_base_/datasets/dota.py', '../_base_/ars-detr_r50_3x.py']
data_root = 'data/synthetic/DOTA/split_128/'
img_scale = (128, 128)
embed_dims = 64
max_epochs = 24

attention = dict(embed_dims=embed_dims, num_heads=8, impl='pytorch')
model = dict(
    num_queries=100,
    backbone=dict(depth=18, frozen_stages=-1, norm_cfg=dict(type='BN', requires_grad=True),
                  norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[128, 256, 512], out_channels=embed_dims,
              norm_cfg=dict(type='GN', num_groups=8)),
    encoder=dict(num_layers=2, layer_cfg=dict(
        self_attn_cfg=attention,
        ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=256))),
    decoder=dict(num_layers=2, layer_cfg=dict(
        self_attn_cfg=dict(embed_dims=embed_dims),
        cross_attn_cfg=attention,
        ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=256))),
    positional_encoding=dict(num_feats=embed_dims // 2),
    bbox_head=dict(embed_dims=embed_dims),
    dn_cfg=dict(group_cfg=dict(num_dn_queries=30)),
    test_cfg=dict(max_per_img=100))

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
    dataset=dict(data_root=data_root, ann_file='trainval/annfiles/',
                 data_prefix=dict(img_path='trainval/images/'), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4, num_workers=1,
    dataset=dict(data_root=data_root, ann_file='val/annfiles/',
                 data_prefix=dict(img_path='val/images/'), pipeline=val_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    _delete_=True, type='MergedDOTAMetric', ann_dir='data/synthetic/DOTA/val/labelTxt/',
    iou_thrs=[0.5], eval_mode='11points')
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[max_epochs * 3 // 4], gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=2e-4), paramwise_cfg=dict(_delete_=True))
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=1, max_keep_ckpts=2))
# The same seed gives the same demo numbers: weights, sampling and augmentation are seeded
# (--cfg-options randomness.seed=N for another run).
randomness = dict(seed=0, deterministic=False)
