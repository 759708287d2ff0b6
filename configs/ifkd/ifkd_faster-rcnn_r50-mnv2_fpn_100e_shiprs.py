# IFKD (tables 1-2): faster-rcnn ResNet-50 teacher -> mnv2 student on shiprs.
_base_ = ['../detectors/faster-rcnn_mnv2_fpn_100e_shiprs.py', './_base_/ifkd_losses.py']
teacher_cfg = dict(config='configs/detectors/faster-rcnn_r50_fpn_100e_shiprs.py',
                   checkpoint='work_dirs/faster-rcnn_r50_fpn_100e_shiprs/epoch_100.pth')
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student={{_base_.model}},
    teacher=teacher_cfg,
    distill_losses={{_base_.ifkd_losses}})
