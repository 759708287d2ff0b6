# The ResNet-18 student of KD-RNet with the eq. 1 weights of its own losses:
# L = lambda_1 L_cls (focal) + lambda_2 L_reg (KLD) + lambda_3 L_KD-cls + lambda_4 L_KD-reg.
# lambda_3 and lambda_4 are in the distillation config; the paper gives no values (all 1).
_base_ = '../rotated-retinanet-rbox-le90_r18_fpn_kld_1x_dota-600.py'
lambda_1 = 1.0
lambda_2 = 1.0
model = dict(
    bbox_head=dict(loss_cls=dict(loss_weight=lambda_1), loss_bbox=dict(loss_weight=lambda_2)))
