# Faster R-CNN ResNet-50 FPN (the teacher of IFKD's tables 1-2) on ShipRSImageNet level 3.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py', '../_base_/datasets/shiprs_level3.py',
    '../_base_/schedules/schedule_100e.py', 'mmdet::_base_/default_runtime.py'
]
model = dict(roi_head=dict(bbox_head=dict(num_classes=50)))
# mmdetection's Faster R-CNN 1x learning rate for a total batch of 16 (scaled by auto_scale_lr:
# configs/_base_/schedules/schedule_100e.py).
optim_wrapper = dict(optimizer=dict(lr=0.02))
