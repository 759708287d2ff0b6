# The demo's distillation with EDE on: needs MobileSAM weights at checkpoints/mobile_sam.pt.
_base_ = './ifkd_retinanet_r34-r18_fpn_demo_synthetic-shiprs.py'
model = dict(distill_losses=[
    dict(type='IFKDFeatureLoss', student_channels=128, teacher_channels=128,
         alpha={{_base_.ifkd_alpha}}, ede=dict(checkpoint={{_base_.mobile_sam_checkpoint}})),
    dict(type='IFKDHeadLoss', beta={{_base_.demo_beta}})
])
