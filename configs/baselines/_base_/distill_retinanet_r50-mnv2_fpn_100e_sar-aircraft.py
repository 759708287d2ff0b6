# The distiller every IFKD Table 3 baseline on SAR-AIRcraft-1.0 inherits: RetinaNet ResNet-50
# teacher -> MobileNetV2 student (train the teacher first, README); a baseline sets
# model.distill_losses.
_base_ = '../../detectors/retinanet_mnv2_fpn_100e_sar-aircraft.py'
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student={{_base_.model}},
    teacher=dict(config='configs/detectors/retinanet_r50_fpn_100e_sar-aircraft.py',
                 checkpoint='work_dirs/retinanet_r50_fpn_100e_sar-aircraft/epoch_100.pth'),
    distill_losses=[])
