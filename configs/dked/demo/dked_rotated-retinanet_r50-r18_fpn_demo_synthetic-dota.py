# Demo DKED: the synthetic-DOTA demo teacher (R50) distilled into the demo student (R18),
# narrow FPN (64 channels).
# Train the teacher first (README, "Rotated-box distillation").
# DKED's four parts: DDC (training-time, inside
# DKEDResponseLoss: the exported student has the plain student's layers), non-local feature
# correlation of backbone stages, direction-adaptive response distillation with an oriented
# Gaussian GT mask, teacher-bounded box loss (margin delta) and soft class labels (lambda).
_base_ = '../_base_/dked_student-r18-demo.py'
lam = {{_base_.lam}}  # DKED's lambda; the student's own class loss weight is set to it in _base_
delta = 0.0  # margin of the teacher bound (the poster gives none)
teacher_cfg = dict(
    config='configs/kd-rnet/demo/rotated-retinanet_r50_fpn_demo_synthetic-dota.py',
    checkpoint='work_dirs/demo/rotated-retinanet_r50_fpn_demo_synthetic-dota/epoch_36.pth')
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student={{_base_.model}},
    teacher=teacher_cfg,
    distill_losses=[
        dict(type='DKEDCorrelationLoss', stages=(-2, -1), max_size=16, loss_weight=1.0),
        dict(type='DKEDResponseLoss', student_channels=64, teacher_channels=64,
             strides=(8, 16, 32, 64, 128), num_orientations=8, sigma_ratio=0.25,
             # L_drfd: standardised responses, error over the teacher's energy (0 = match,
             # 1 = silent student); the DDC is trained on the GT orientation (loss_dked_ddc)
             loss_weight=1.0, ddc_loss_weight=1.0),
        dict(type='DKEDPredictionLoss', head={{_base_.model.bbox_head}},
             train_cfg={{_base_.model.train_cfg}}, lam=lam, delta=delta)
    ])
