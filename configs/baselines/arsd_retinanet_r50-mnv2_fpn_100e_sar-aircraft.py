# IFKD Table 3 baseline:
# ARSD (Yang et al., TGRS 2022): multiscale core features imitation (MCFI: area-weighted FPN and
# class-logit imitation on each object's level) and strict supervision regression distillation
# (SSRD: GIoU to the teacher's boxes that beat the student's, which beat their anchors).
# The paper's text could not be read here: the weights are the authors' released code's
# (github youngfly/Remote-Sensing-Distillation, Distill_Atss): FPN imitation 0.01, class-logit
# imitation 0.01, regression 0.1 x its GIoU loss weight 2.0 = 0.2 (ARSDLoss's docstring).
_base_ = './_base_/distill_retinanet_r50-mnv2_fpn_100e_sar-aircraft.py'
model = dict(distill_losses=[
    dict(type='ARSDLoss', head={{_base_.model.student.bbox_head}},
         train_cfg={{_base_.model.student.train_cfg}}, student_channels=256,
         teacher_channels=256, feat_weight=0.01, cls_weight=0.01, ssrd_weight=0.2)
])
