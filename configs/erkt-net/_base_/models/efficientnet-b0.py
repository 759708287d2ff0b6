# EfficientNet-B0 (ImageNet-1K pre-trained, mmpretrain weights): ERKT-Net's student and a
# teacher member. The leaf sets head.num_classes. L_cross is the CutMix cross-entropy (eq. 11).
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='EfficientNet',
        arch='b0',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/efficientnet/'
            'efficientnet-b0_3rdparty_8xb32_in1k_20220119-a7e2a0b1.pth',
            prefix='backbone')),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        in_channels=1280,
        loss=dict(type='CutMixCrossEntropyLoss', loss_weight=1.0)))
