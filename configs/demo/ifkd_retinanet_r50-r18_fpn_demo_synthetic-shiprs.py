# The demo's distillation: IFKD from the demo teacher (R50) into the demo student (R18), same
# schedule as the student alone. No MobileSAM weights ship with the project, so EDE is off here
# (FDR + HSM + both losses on); ifkd-ede_... adds it given checkpoints/mobile_sam.pt.
_base_ = ['./retinanet_r18_fpn_demo_synthetic-shiprs.py', '../ifkd/_base_/ifkd_losses.py']
teacher_cfg = dict(
    config='configs/demo/retinanet_r50_fpn_demo_synthetic-shiprs.py',
    checkpoint='work_dirs/demo/retinanet_r50_fpn_demo_synthetic-shiprs/epoch_24.pth')
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student={{_base_.model}},
    teacher=teacher_cfg,
    distill_losses=[
        dict(type='IFKDFeatureLoss', student_channels=128, teacher_channels=128, ede=None),
        dict(type='IFKDHeadLoss')
    ])
