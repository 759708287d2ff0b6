# IFKD Table 3 baseline:
# InsDist (Li et al., TGRS 2023) instance-masked feature imitation and instance relations on
# every FPN level. The paper's hyper-parameter values could not be read (only its abstract and the
# authors' code, which takes them as arguments); InsDistLoss's documented defaults, written
# out: mask on P5 (the code's stride-32 level), energy threshold 0.5, weights foreground 5e-5,
# background 2.5e-5, instance relation 1.
_base_ = './_base_/distill_retinanet_r50-mnv2_fpn_100e_sar-aircraft.py'
model = dict(distill_losses=[
    dict(type='InsDistLoss', student_channels=256, teacher_channels=256, mask_level=2,
         threshold=0.5, weight_fg=5e-5, weight_bg=2.5e-5, weight_rel=1.0)
])
