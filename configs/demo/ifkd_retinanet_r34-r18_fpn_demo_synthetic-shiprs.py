# The demo's distillation: IFKD from the demo teacher (R34) into the demo student (R18), same
# schedule and optimiser as the student alone (AdamW 1e-3, its own lr: no auto_scale_lr). No
# MobileSAM weights ship with the project, so EDE is off here (FDR + HSM + both losses on);
# ifkd-ede_... adds it given checkpoints/mobile_sam.pt. Loss weights: the defaults
# alpha = 1e-4, beta = 1e-3 (the authors' released code; see configs/ifkd/_base_/ifkd_losses.py).
# The teacher checkpoint is the one tools/run_demo.sh trains with seed 0 (it passes each seed's).
_base_ = ['./retinanet_r18_fpn_demo_synthetic-shiprs.py', '../ifkd/_base_/ifkd_losses.py']
teacher_cfg = dict(
    config='configs/demo/retinanet_r34_fpn_demo_synthetic-shiprs.py',
    checkpoint='work_dirs/demo/seed_0/retinanet_r34_fpn_demo_synthetic-shiprs/epoch_24.pth')
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student={{_base_.model}},
    teacher=teacher_cfg,
    distill_losses=[
        dict(type='IFKDFeatureLoss', student_channels=128, teacher_channels=128,
             alpha={{_base_.ifkd_alpha}}, ede=None),
        dict(type='IFKDHeadLoss', beta={{_base_.ifkd_beta}})
    ])
