# IFKD Table 3 baseline:
# AT (Zagoruyko and Komodakis, ICLR 2017) attention transfer on every FPN level,
# RetinaNet ResNet-50 teacher -> MobileNetV2 student. Train the teacher first (README).
_base_ = '../detectors/retinanet_mnv2_fpn_100e_sar-aircraft.py'
teacher_cfg = dict(config='configs/detectors/retinanet_r50_fpn_100e_sar-aircraft.py',
                   checkpoint='work_dirs/retinanet_r50_fpn_100e_sar-aircraft/epoch_100.pth')
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student={{_base_.model}},
    teacher=teacher_cfg,
    distill_losses=[dict(type='ATLoss')])
