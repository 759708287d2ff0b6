# IFKD Table 3 baseline: FitNet (Romero et al., ICLR 2015) hint loss on every FPN level.
_base_ = './_base_/distill_retinanet_r50-mnv2_fpn_100e_shiprs.py'
model = dict(distill_losses=[dict(type='FitNetLoss', student_channels=256, teacher_channels=256)])
