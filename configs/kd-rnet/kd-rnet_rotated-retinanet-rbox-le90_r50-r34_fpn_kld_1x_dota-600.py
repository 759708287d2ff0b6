# KD-RNet (Table II): rotated RetinaNet ResNet-50 teacher -> ResNet-34 student on DOTA 600x600
# patches. Eq. 1: lambda_1, lambda_2 (student's focal / KLD loss weights) are set in the _base_;
# lambda_3, lambda_4 weight eq. 2 (KL(p_s || p_t), T = 8) and eq. 3 (soft regression, T = 10).
# Train the teacher first (README, "Rotated-box distillation").
_base_ = './_base_/kd-rnet_student-r34.py'
lambda_3 = 1.0
lambda_4 = 1.0
teacher_cfg = dict(
    config='configs/kd-rnet/rotated-retinanet-rbox-le90_r50_fpn_kld_1x_dota-600.py',
    checkpoint='work_dirs/rotated-retinanet-rbox-le90_r50_fpn_kld_1x_dota-600/epoch_12.pth')
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student={{_base_.model}},
    teacher=teacher_cfg,
    distill_losses=[
        # eq. 2 on one Bernoulli per class (the focal head's sigmoid logits; a softmax over
        # them would drop the foreground confidence), eq. 3 on the anchors where the teacher's
        # highest class probability is >= 0.05 (its candidate detections), both x T^2
        dict(type='KDRNetLoss', cls_weight=lambda_3, reg_weight=lambda_4, cls_temperature=8.0,
             reg_temperature=10.0, distribution='sigmoid', reg_score_thr=0.05,
             temperature_squared=True)
    ])
