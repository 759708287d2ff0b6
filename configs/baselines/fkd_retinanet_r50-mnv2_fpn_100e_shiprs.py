# IFKD Table 3 baseline:
# FKD (Zhang & Ma, ICLR 2021) attention-guided and non-local distillation on every FPN level.
# Hyper-parameters: the authors' released RetinaNet code (T = 0.1; weights 7e-5 * 6 for L_AM,
# 4e-3 * 6 for L_AT, 7e-5 * 6 for L_NLD); the paper's own table could not be read here.
_base_ = './_base_/distill_retinanet_r50-mnv2_fpn_100e_shiprs.py'
model = dict(distill_losses=[
    dict(type='FKDLoss', student_channels=256, teacher_channels=256, temp=0.1,
         am_weight=7e-5 * 6, at_weight=4e-3 * 6, nld_weight=7e-5 * 6)
])
