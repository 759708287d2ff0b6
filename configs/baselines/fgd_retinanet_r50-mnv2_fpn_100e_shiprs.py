# IFKD Table 3 baseline:
# FGD (Yang et al., CVPR 2022) focal and global distillation on every FPN level.
_base_ = './_base_/distill_retinanet_r50-mnv2_fpn_100e_shiprs.py'
model = dict(distill_losses=[dict(type='FGDLoss', student_channels=256, teacher_channels=256)])
