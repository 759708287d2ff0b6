# DOTA-v1.0 cut into 600x600 patches as in KD-RNet (section III-A): overlap 150 px for training,
# 300 px for testing. Made from the official train/val/test folders with
#   python tools/data/split_dota.py --src data/DOTA --out data/DOTA/split_600
# (its defaults: 600 px patches, overlaps 150/300)
# which writes {trainval,val,test}/images (+ annfiles with labels) with the
# {id}__600__{x}___{y} patch names. Validation: the val patches (overlap 300) merged back per
# image and scored against the unsplit val/labelTxt by MergedDOTAMetric (DOTA mAP of whole images).
# Test: the unlabelled test patches, merged back per image by DOTAMetric(merge_patches=True)
# into the Task1 submission zip under work_dirs/.../Task1_results.
_base_ = '../../_base_/datasets/dota.py'
data_root = 'data/DOTA/split_600/'
img_scale = (600, 600)

train_pipeline = [
    dict(type='mmdet.LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'),
    dict(type='ConvertBoxType', box_type_mapping=dict(gt_bboxes='rbox')),
    dict(type='mmdet.Resize', scale=img_scale, keep_ratio=True),
    dict(type='mmdet.RandomFlip', prob=0.75, direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='mmdet.PackDetInputs')
]
val_pipeline = [
    dict(type='mmdet.LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='mmdet.Resize', scale=img_scale, keep_ratio=True),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'),
    dict(type='ConvertBoxType', box_type_mapping=dict(gt_bboxes='rbox')),
    dict(type='mmdet.PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
test_pipeline = [
    dict(type='mmdet.LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='mmdet.Resize', scale=img_scale, keep_ratio=True),
    dict(type='mmdet.PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    dataset=dict(data_root=data_root, ann_file='trainval/annfiles/',
                 data_prefix=dict(img_path='trainval/images/'), pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(data_root=data_root, ann_file='val/annfiles/',
                 data_prefix=dict(img_path='val/images/'), pipeline=val_pipeline))
test_dataloader = dict(
    dataset=dict(data_root=data_root, ann_file='', data_prefix=dict(img_path='test/images/'),
                 pipeline=test_pipeline))
val_evaluator = dict(
    _delete_=True, type='MergedDOTAMetric', ann_dir='data/DOTA/val/labelTxt/', iou_thrs=[0.5],
    eval_mode='11points')
test_evaluator = dict(
    type='DOTAMetric', format_only=True, merge_patches=True,
    outfile_prefix='work_dirs/kd-rnet_dota_test/Task1_results')
