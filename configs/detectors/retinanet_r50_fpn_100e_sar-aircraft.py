# RetinaNet ResNet-50 FPN (the teacher of IFKD's tables 1-2) on SAR-AIRcraft-1.0.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py', '../_base_/datasets/sar_aircraft.py',
    '../_base_/schedules/schedule_100e.py', 'mmdet::_base_/default_runtime.py'
]
model = dict(bbox_head=dict(num_classes=7))
