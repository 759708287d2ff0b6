# ERKT-Net on AID (train ratio 20%): the teacher ensemble distilled into EfficientNet-B0 with
# the VSM (Table 1; CutMix at batch level, probability 1.0) and
# Loss = R * L_cross + (2 - R) * 2 * (L_inter + L_intra), R = 1, tau = 2 (eq. 11-15).
_base_ = ['./teachers/efficientnet-b0_600e_aid-tr20.py']
model = dict(
    _delete_=True,
    type='ERKTDistiller',
    student={{_base_.model}},
    teacher=dict(type='TeacherEnsemble', members={{_base_.teacher_members}}),
    # DIST's terms times tau^2, as in the DIST authors' code (False: eq. 9-10 as printed)
    distill_loss=dict(type='DISTLoss', tau=2.0, inter_weight=2.0, intra_weight=2.0,
                      scale_by_tau_squared=True),
    ratio=1.0)
data_preprocessor = dict(
    batch_augments=dict(augments=[dict(type='CutMix', alpha=1.0)], probs=[1.0]))
train_dataloader = dict(dataset=dict(pipeline={{_base_.vsm_train_pipeline}}))
