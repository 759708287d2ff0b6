# MutDet pre-training demo: the ARS-DETR demo detector (ResNet-18, embed dims 64, 2 + 2 layers) on
# the synthetic DOTA patches with the demo pseudo-labels (16 clusters, 32-d embeddings;
# configs/mutdet/demo/pseudo-labels_components_r18_demo.py), frozen backbone, one enhancement layer.
# The backbone is random here (the demo has no ImageNet weights), so what is learnt is the
# transformer; tools/mutdet/run_demo.sh runs the whole chain.
_base_ = '../../ars-detr/demo/ars-detr_r18_demo_synthetic-dota.py'
pseudo_labels = 'work_dirs/mutdet-demo/pseudo_labels/labels/'
num_clusters = 16
max_epochs = 6

model = dict(
    type='MutDet',
    backbone=dict(frozen_stages=4, norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True),
    bbox_head=dict(num_classes=num_clusters),
    enhancement=dict(num_layers=1, num_heads=8, feedforward_channels=256),
    object_dims=32,
    max_objects=100)
train_pipeline = [
    dict(type='mmdet.LoadImageFromFile'),
    dict(type='LoadMutDetPseudoLabels'),
    dict(type='mmdet.Resize', scale=(128, 128), keep_ratio=True),
    dict(type='mmdet.RandomFlip', prob=0.75, direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='ResolveMutDetPseudoLabels'),
    dict(type='PackMutDetInputs')
]
train_dataloader = dict(dataset=dict(
    _delete_=True, type='MutDetPseudoLabelDataset', data_root='', ann_file=pseudo_labels,
    data_prefix=dict(img_path='data/synthetic/DOTA/split_128/trainval/images/'),
    num_clusters=num_clusters, filter_cfg=dict(filter_empty_gt=True), pipeline=train_pipeline))
val_dataloader = val_cfg = val_evaluator = None
test_dataloader = test_cfg = test_evaluator = None
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs + 1)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[max_epochs * 3 // 4], gamma=0.1)
]
