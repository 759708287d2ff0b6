# Table 9 "Original DIST" on NWPU-RESISC45 (train ratio 20%), 3000 epochs: the same teacher
# ensemble and student, the usual augmentation instead of the VSM (CutMix 0.1), DIST with tau = 1
# and weights 2.0 (Huang et al.), L = L_cross + L_DIST.
_base_ = ['./teachers/efficientnet-b0_600e_nwpu45-tr20.py']
model = dict(
    _delete_=True,
    type='ERKTDistiller',
    student={{_base_.model}},
    teacher=dict(type='TeacherEnsemble', members={{_base_.teacher_members}}),
    distill_loss=dict(type='DISTLoss', tau=1.0, inter_weight=2.0, intra_weight=2.0),
    ratio=1.0)
max_epochs = 3000
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs,
         eta_min=0, convert_to_iter_based=True)
]
