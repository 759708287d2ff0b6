# DIOR-R (20 classes, 800x800), rotated boxes, AP50 and AP75 under the DOTA protocol.
# DIORRDataset is mmrotate's reader with its bbox_min_size and width/height bugs fixed.
custom_imports = dict(imports=['ifkd_mm'], allow_failed_imports=False)
default_scope = 'mmrotate'
dataset_type = 'DIORRDataset'
data_root = 'data/DIOR-R/'
backend_args = None

train_pipeline = [
    dict(type='mmdet.LoadImageFromFile', backend_args=backend_args),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'),
    dict(type='ConvertBoxType', box_type_mapping=dict(gt_bboxes='rbox')),
    dict(type='mmdet.Resize', scale=(800, 800), keep_ratio=True),
    dict(type='mmdet.RandomFlip', prob=0.75, direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='mmdet.PackDetInputs')
]
val_pipeline = [
    dict(type='mmdet.LoadImageFromFile', backend_args=backend_args),
    dict(type='mmdet.Resize', scale=(800, 800), keep_ratio=True),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'),
    dict(type='mmdet.PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(
        type='ConcatDataset',
        datasets=[
            dict(type=dataset_type, data_root=data_root, ann_file='ImageSets/Main/train.txt',
                 data_prefix=dict(img_path='JPEGImages-trainval'),
                 filter_cfg=dict(filter_empty_gt=True), pipeline=train_pipeline),
            dict(type=dataset_type, data_root=data_root, ann_file='ImageSets/Main/val.txt',
                 data_prefix=dict(img_path='JPEGImages-trainval'),
                 filter_cfg=dict(filter_empty_gt=True), pipeline=train_pipeline),
        ]))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Main/test.txt',
        data_prefix=dict(img_path='JPEGImages-test'),
        test_mode=True,
        pipeline=val_pipeline))
test_dataloader = val_dataloader

# DOTA's devkit protocol, computed in this process: the val pipeline keeps the annotated
# quadrilaterals (no ConvertBoxType), which InProcessDOTAMetric scores by exact polygon IoU
val_evaluator = dict(
    type='InProcessDOTAMetric', metric='mAP', iou_thrs=[0.5, 0.75], eval_mode='11points')
test_evaluator = val_evaluator
