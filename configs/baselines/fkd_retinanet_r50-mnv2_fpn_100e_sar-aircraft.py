# IFKD Table 3 baseline:
# FKD (Zhang & Ma, ICLR 2021) attention-guided and non-local distillation on every FPN level,
# RetinaNet ResNet-50 teacher -> MobileNetV2 student. Train the teacher first (README).
# Hyper-parameters: the authors' released RetinaNet code (T = 0.1; weights 7e-5 * 6 for L_AM,
# 4e-3 * 6 for L_AT, 7e-5 * 6 for L_NLD); the paper's own table could not be read here.
_base_ = '../detectors/retinanet_mnv2_fpn_100e_sar-aircraft.py'
teacher_cfg = dict(config='configs/detectors/retinanet_r50_fpn_100e_sar-aircraft.py',
                   checkpoint='work_dirs/retinanet_r50_fpn_100e_sar-aircraft/epoch_100.pth')
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student={{_base_.model}},
    teacher=teacher_cfg,
    distill_losses=[
        dict(type='FKDLoss', student_channels=256, teacher_channels=256, temp=0.1,
             am_weight=7e-5 * 6, at_weight=4e-3 * 6, nld_weight=7e-5 * 6)
    ])
