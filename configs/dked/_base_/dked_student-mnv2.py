# A DKED student: rotated-retinanet-rbox-le90_mnv2_fpn_kld_6x_hrsc
# with its own class loss weighted by DKED's lambda,
# L_cls = lambda JOL_cls(c_S, c_GT) + (1 - lambda) JOL_cls(c_T, c_S) (the second term is
# DKEDPredictionLoss's, which reads lam from here). The poster gives no lambda: 0.5.
_base_ = '../rotated-retinanet-rbox-le90_mnv2_fpn_kld_6x_hrsc.py'
lam = 0.5
model = dict(bbox_head=dict(loss_cls=dict(loss_weight=lam)))
