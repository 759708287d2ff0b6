# ARS-DETR (httle/ARS-DETR) as ifkd_mm's ARSDETR on mmdet 3.x's DINO: ResNet-50, 4 feature levels,
# 6 + 6 layers, FFN 1024, dropout 0.1, 300 queries, 100 denoising queries (noise: label 0.5,
# box 0.4, angle 0.02 relative), AR-CSL angle classifier (180 bins, le90), matching and losses
# focal x2 + L1 x2 + GIoU x5 + aspect-weighted angle BCE x2 on every decoder layer, the encoder
# proposals and the denoising queries; AdamW 1e-4, weight decay 1e-5, gradient clip 35,
# lr x0.1 on the backbone and the sampling offsets; 36 epochs, lr x0.1 after epoch 32 (the
# paper's 3x schedule). Inherit it after a dataset config (which imports ifkd_mm and sets the
# mmrotate scope) and set num_classes.
embed_dims = 256
num_levels = 4
attention_impl = 'auto'  # mmcv's CUDA kernel when this mmcv has it, else pure PyTorch

model = dict(
    type='ARSDETR',
    num_queries=300,
    with_box_refine=True,
    as_two_stage=True,
    num_feature_levels=num_levels,
    data_preprocessor=dict(
        type='mmdet.DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=1,
        boxtype2tensor=False),
    backbone=dict(
        type='mmdet.ResNet',
        depth=50,
        num_stages=4,
        out_indices=(1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    neck=dict(
        type='mmdet.ChannelMapper',
        in_channels=[512, 1024, 2048],
        kernel_size=1,
        out_channels=embed_dims,
        act_cfg=None,
        norm_cfg=dict(type='GN', num_groups=32),
        num_outs=num_levels),
    encoder=dict(
        num_layers=6,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=embed_dims, num_levels=num_levels, dropout=0.1,
                               batch_first=True, impl=attention_impl),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=1024, ffn_drop=0.1))),
    decoder=dict(
        num_layers=6,
        return_intermediate=True,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=embed_dims, num_heads=8, dropout=0.1,
                               batch_first=True),
            cross_attn_cfg=dict(embed_dims=embed_dims, num_levels=num_levels, dropout=0.1,
                                batch_first=True, impl=attention_impl),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=1024, ffn_drop=0.1)),
        post_norm_cfg=None),
    positional_encoding=dict(num_feats=embed_dims // 2, normalize=True, offset=0.0,
                             temperature=20),
    bbox_head=dict(
        type='ARSDETRHead',
        num_classes=15,
        embed_dims=embed_dims,
        sync_cls_avg_factor=True,
        angle_coder=dict(type='ARCSLCoder', angle_version='le90', omega=1),
        loss_cls=dict(type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                      loss_weight=2.0),
        loss_bbox=dict(type='mmdet.L1Loss', loss_weight=2.0),
        loss_iou=dict(type='mmdet.GIoULoss', loss_weight=5.0),
        loss_angle=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True, loss_weight=2.0)),
    dn_cfg=dict(
        label_noise_scale=0.5,
        box_noise_scale=0.4,
        angle_noise_scale=0.02,
        group_cfg=dict(dynamic=True, num_groups=None, num_dn_queries=100)),
    train_cfg=dict(
        assigner=dict(
            type='mmdet.HungarianAssigner',
            match_costs=[
                dict(type='mmdet.FocalLossCost', weight=2.0),
                dict(type='mmdet.BBoxL1Cost', weight=2.0, box_format='xywh'),
                dict(type='mmdet.IoUCost', iou_mode='giou', weight=5.0),
                dict(type='AngleSoftBCECost', weight=2.0)
            ])),
    test_cfg=dict(max_per_img=300))

max_epochs = 36
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=12)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[32], gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-5),
    clip_grad=dict(max_norm=35, norm_type=2),
    paramwise_cfg=dict(custom_keys=dict(backbone=dict(lr_mult=0.1),
                                        sampling_offsets=dict(lr_mult=0.1))))
# the paper's total batch; `tools/train.py --auto-scale-lr` rescales the lr to yours
auto_scale_lr = dict(enable=False, base_batch_size=16)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='mmdet.DetVisualizationHook'))
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='RotLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
