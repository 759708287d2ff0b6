# ARS-DETR R50 on DOTA-v1.0, the paper's 3x schedule (36 epochs), 1024 px patches with 200 px
# overlap, made from the official train/val folders with
#   python tools/data/split_dota.py --src data/DOTA --out data/DOTA/split_1024 --size 1024 \
#       --train-overlap 200 --test-overlap 200 --splits train:trainval val:val
# Validation and test: the val patches merged per image and scored against the unsplit
# val/labelTxt (MergedDOTAMetric: DOTA-v1.0 mAP of whole images, VOC07 AP50).
_base_ = ['../_base_/datasets/dota.py', './_base_/ars-detr_r50_3x.py']
data_root = 'data/DOTA/split_1024/'

model = dict(bbox_head=dict(num_classes=15))
train_dataloader = dict(
    dataset=dict(data_root=data_root, ann_file='trainval/annfiles/',
                 data_prefix=dict(img_path='trainval/images/')))
val_dataloader = dict(
    dataset=dict(data_root=data_root, ann_file='val/annfiles/',
                 data_prefix=dict(img_path='val/images/')))
test_dataloader = val_dataloader
val_evaluator = dict(
    _delete_=True, type='MergedDOTAMetric', ann_dir='data/DOTA/val/labelTxt/', iou_thrs=[0.5],
    eval_mode='11points')
test_evaluator = val_evaluator
