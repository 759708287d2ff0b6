# IFKD ablation (table 4), modules on: hsm; RetinaNet R50 -> MobileNetV2, ShipRSImageNet.
# The table's baseline row is AT: configs/baselines/at_retinanet_r50-mnv2_fpn_100e_shiprs.py.
_base_ = './ifkd_retinanet_r50-mnv2_fpn_100e_shiprs.py'
model = dict(distill_losses=[
    dict(type='IFKDFeatureLoss', student_channels=256, teacher_channels=256,
         ede=None, fdr=None, hsm=dict()),
    dict(type='IFKDHeadLoss', hsm=dict())
])
