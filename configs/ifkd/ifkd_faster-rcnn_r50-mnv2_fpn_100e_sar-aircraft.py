# IFKD (tables 1-2): faster-rcnn ResNet-50 teacher -> mnv2 student on sar-aircraft.
_base_ = ['../detectors/faster-rcnn_mnv2_fpn_100e_sar-aircraft.py', './_base_/ifkd_losses.py']
teacher_cfg = dict(config='configs/detectors/faster-rcnn_r50_fpn_100e_sar-aircraft.py',
                   checkpoint='work_dirs/faster-rcnn_r50_fpn_100e_sar-aircraft/epoch_100.pth')
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student={{_base_.model}},
    teacher=teacher_cfg,
    distill_losses={{_base_.ifkd_losses}})
