# AFGR50 (50 classes, one folder per class), seeded train-ratio split (train_ratio=0.2 here),
# overall accuracy (top-1) and the confusion matrix.
custom_imports = dict(imports=['ifkd_mm'], allow_failed_imports=False)
default_scope = 'mmpretrain'
dataset_type = 'SceneFolderDataset'
data_root = 'data/AFGR50/'
train_ratio = 0.2
split_seed = 0
num_classes = 50

data_preprocessor = dict(
    num_classes=num_classes,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128)),
    dict(type='PackInputs')
]
train_dataloader = dict(
    batch_size=30,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 train_ratio=train_ratio, seed=split_seed, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=30,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='test',
                 train_ratio=train_ratio, seed=split_seed, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [dict(type='Accuracy', topk=(1, )), dict(type='ConfusionMatrix')]
test_evaluator = val_evaluator
