# IFKD Table 3 baseline:
# FRS (Du et al., NeurIPS 2021) feature-richness distillation of FPN levels and class outputs.
_base_ = './_base_/distill_retinanet_r50-mnv2_fpn_100e_sar-aircraft.py'
model = dict(distill_losses=[dict(type='FRSLoss', student_channels=256, teacher_channels=256)])
