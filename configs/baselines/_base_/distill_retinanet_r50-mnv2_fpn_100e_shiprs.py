# The distiller every IFKD Table 3 baseline on ShipRSImageNet inherits: RetinaNet ResNet-50
# teacher -> MobileNetV2 student (train the teacher first, README); a baseline sets
# model.distill_losses.
_base_ = '../../detectors/retinanet_mnv2_fpn_100e_shiprs.py'
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student={{_base_.model}},
    teacher=dict(config='configs/detectors/retinanet_r50_fpn_100e_shiprs.py',
                 checkpoint='work_dirs/retinanet_r50_fpn_100e_shiprs/epoch_100.pth'),
    distill_losses=[])
