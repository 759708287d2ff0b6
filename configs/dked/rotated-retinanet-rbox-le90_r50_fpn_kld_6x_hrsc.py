# DKED's teacher on HRSC2016 (and the student of its self-distillation): rotated RetinaNet
# ResNet-50 FPN with focal + KLD losses (mmrotate; the poster's GGHL is not in mmrotate),
# mmrotate's 6x HRSC schedule, one class ('ship').
_base_ = [
    '../_base_/datasets/hrsc2016.py',
    '../kd-rnet/_base_/rotated-retinanet-rbox-le90_r50_fpn_kld.py',
    'mmrotate::_base_/schedules/schedule_6x.py'
]
model = dict(bbox_head=dict(num_classes=1))
