# IFKD Table 3 baseline:
# FGD (Yang et al., CVPR 2022) focal and global distillation on every FPN level,
# RetinaNet ResNet-50 teacher -> MobileNetV2 student. Train the teacher first (README).
_base_ = '../detectors/retinanet_mnv2_fpn_100e_shiprs.py'
teacher_cfg = dict(config='configs/detectors/retinanet_r50_fpn_100e_shiprs.py',
                   checkpoint='work_dirs/retinanet_r50_fpn_100e_shiprs/epoch_100.pth')
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student={{_base_.model}},
    teacher=teacher_cfg,
    distill_losses=[dict(type='FGDLoss', student_channels=256, teacher_channels=256)])
