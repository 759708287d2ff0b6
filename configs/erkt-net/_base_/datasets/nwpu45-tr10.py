# NWPU-RESISC45, train ratio 10% (seeded random split), 256 x 256, the ERKT-Net runtime; the
# teachers are trained with the usual augmentation (ordinary_train_pipeline, CutMix at 0.1).
_base_ = ['../../../_base_/datasets/nwpu45.py', '../runtime_600e.py']
custom_imports = dict(imports=['ifkd_mm', 'ifkd_mm.classification'], allow_failed_imports=False)
train_ratio = 0.1
data_preprocessor = dict(
    batch_augments=dict(augments=[dict(type='CutMix', alpha=1.0)], probs=[0.1]))
train_dataloader = dict(
    dataset=dict(train_ratio=train_ratio, pipeline={{_base_.ordinary_train_pipeline}}))
val_dataloader = dict(
    dataset=dict(train_ratio=train_ratio, pipeline={{_base_.erkt_test_pipeline}}))
test_dataloader = val_dataloader
# The teacher ensemble (section 3.1): weights 0.3 / 0.4 / 0.3, checkpoints where tools/train.py
# writes them for the teacher configs.
teacher_members = [
    dict(name='B0', weight=0.3,
         config='configs/erkt-net/teachers/efficientnet-b0_600e_nwpu45-tr10.py',
         checkpoint='work_dirs/efficientnet-b0_600e_nwpu45-tr10/epoch_600.pth'),
    dict(name='B3', weight=0.4,
         config='configs/erkt-net/teachers/efficientnet-b3_600e_nwpu45-tr10.py',
         checkpoint='work_dirs/efficientnet-b3_600e_nwpu45-tr10/epoch_600.pth'),
    dict(name='R50', weight=0.3,
         config='configs/erkt-net/teachers/resnet50_600e_nwpu45-tr10.py',
         checkpoint='work_dirs/resnet50_600e_nwpu45-tr10/epoch_600.pth'),
]
