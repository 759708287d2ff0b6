# Demo KD-RNet: the demo teacher (R50) distilled into the demo student (R18) on synthetic DOTA
# patches, the student's schedule. Eq. 1's lambda_1, lambda_2 are the student's own focal / KLD
# loss weights (1, model.student.bbox_head.loss_cls/loss_bbox.loss_weight).
_base_ = './rotated-retinanet_r18_fpn_demo_synthetic-dota.py'
lambda_3 = 1.0
lambda_4 = 1.0
teacher_cfg = dict(
    config='configs/kd-rnet/demo/rotated-retinanet_r50_fpn_demo_synthetic-dota.py',
    checkpoint='work_dirs/demo/rotated-retinanet_r50_fpn_demo_synthetic-dota/epoch_36.pth')
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student={{_base_.model}},
    teacher=teacher_cfg,
    distill_losses=[
        # defaults: distribution='sigmoid' (one Bernoulli per class, averaged over the classes),
        # reg_score_thr=0.05 (eq. 3 on the teacher's candidate detections), temperature_squared=True
        dict(type='KDRNetLoss', cls_weight=lambda_3, reg_weight=lambda_4, cls_temperature=8.0,
             reg_temperature=10.0)
    ])
