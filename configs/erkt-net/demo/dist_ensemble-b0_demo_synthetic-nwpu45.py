# Demo "original DIST" (Table 9): the demo ensemble distilled into EfficientNet-B0 with the usual
# augmentation (CutMix 0.1), DIST tau = 1, weights 2.0.
_base_ = ['./efficientnet-b0_demo_synthetic-nwpu45.py']
model = dict(
    _delete_=True,
    type='ERKTDistiller',
    student={{_base_.model}},
    teacher=dict(type='TeacherEnsemble', members={{_base_.teacher_members}}),
    distill_loss=dict(type='DISTLoss', tau=1.0, inter_weight=2.0, intra_weight=2.0),
    ratio=1.0)
work_dir = 'work_dirs/erkt-net/demo/dist_ensemble-b0_demo_synthetic-nwpu45'
