# MutDet pre-training (section 4.1) on DOTA-v1.0's 800 px training patches (overlap 200), resized to
# 1024, with the pseudo-labels of tools/mutdet/make_pseudo_labels.py (256 clusters, 256-d
# embeddings): ARS-DETR R50 with 6 + 6 layers (the paper; the public code's 2 + 2 are
# mutdet_ars-detr_r50_36e_dota-800-pretrain_2+2-layers.py), the backbone frozen (all stages,
# BatchNorm in eval), mutual enhancement (3 layers, 8 heads, MLP 2048), contrastive alignment
# (tau 0.2), the auxiliary siamese branch; AdamW 1e-4, weight decay 1e-5, 500-iteration linear
# warm-up, 36 epochs with the step at 32; h / v / diagonal flips. No validation (pseudo-labels).
#   python tools/data/split_dota.py --src data/DOTA --out data/DOTA/split_800 --size 800 \
#       --train-overlap 200 --splits train:trainval
#   python tools/mutdet/make_pseudo_labels.py configs/mutdet/pseudo-labels_sam-vit-h_r50.py \
#       --images data/DOTA/split_800/trainval/images --out data/mutdet/dota-800
_base_ = '../ars-detr/_base_/ars-detr_r50_3x.py'
custom_imports = dict(imports=['ifkd_mm'], allow_failed_imports=False)
default_scope = 'mmrotate'
data_root = 'data/DOTA/split_800/'
pseudo_labels = 'data/mutdet/dota-800/labels/'
num_clusters = 256

model = dict(
    type='MutDet',
    backbone=dict(frozen_stages=4, norm_eval=True),
    bbox_head=dict(num_classes=num_clusters),
    enhancement=dict(num_layers=3, num_heads=8, feedforward_channels=2048),
    object_dims=256,
    max_objects=1000,
    tau=0.2)

train_pipeline = [
    dict(type='mmdet.LoadImageFromFile'),
    dict(type='LoadMutDetPseudoLabels'),
    dict(type='mmdet.Resize', scale=(1024, 1024), keep_ratio=True),
    dict(type='mmdet.RandomFlip', prob=0.75, direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='ResolveMutDetPseudoLabels'),
    dict(type='PackMutDetInputs')
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(type='MutDetPseudoLabelDataset', data_root=data_root, ann_file=pseudo_labels,
                 data_prefix=dict(img_path='trainval/images/'), num_clusters=num_clusters,
                 filter_cfg=dict(filter_empty_gt=True), pipeline=train_pipeline))
val_dataloader = val_cfg = val_evaluator = None
test_dataloader = test_cfg = test_evaluator = None

train_cfg = dict(val_interval=37)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=36, by_epoch=True, milestones=[32], gamma=0.1)
]
