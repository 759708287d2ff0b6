# The demo's distillation: IFKD from the demo teacher (R34) into the demo student (R18), same
# schedule and optimiser as the student alone (AdamW 1e-3, its own lr: no auto_scale_lr). No
# MobileSAM weights ship with the project, so EDE is off here (FDR + HSM + both losses on);
# ifkd-ede_... adds it given checkpoints/mobile_sam.pt. Loss weights: alpha = 1e-4 (the authors'
# released code; see configs/ifkd/_base_/ifkd_losses.py) and beta = 0.2 instead of the code's
# 1e-3. The head term sums soft BCE over the class channels and averages it over all locations,
# while the focal loss is averaged over the few positive anchors: with the demo's 36 class
# channels (ShipRSImageNet's 450) and 1e-3 it is 0.009 at the first iteration against 1.9 for
# the detection terms and moves nothing. At 0.2 (the paper's beta is 0.5) it starts at 1.4, and
# over seeds 0-2 the distilled student led the student alone on the demo's 128 val images by
# 0.004-0.017 mAP (README); alpha 1e-3 or beta 0.5 helped no seed reliably.
# The teacher checkpoint is the one tools/run_demo.sh trains with seed 0 (it passes each seed's).
_base_ = ['./retinanet_r18_fpn_demo_synthetic-shiprs.py', '../ifkd/_base_/ifkd_losses.py']
demo_beta = 0.2
teacher_cfg = dict(
    config='configs/demo/retinanet_r34_fpn_demo_synthetic-shiprs.py',
    checkpoint='work_dirs/demo/seed_0/retinanet_r34_fpn_demo_synthetic-shiprs/epoch_6.pth')
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student={{_base_.model}},
    teacher=teacher_cfg,
    distill_losses=[
        dict(type='IFKDFeatureLoss', student_channels=128, teacher_channels=128,
             alpha={{_base_.ifkd_alpha}}, ede=None),
        dict(type='IFKDHeadLoss', beta=demo_beta)
    ])
