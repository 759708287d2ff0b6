# IFKD with EDE's offline prior cache (same method as ifkd_retinanet_r50-mnv2_..._shiprs.py).
# First: python tools/ifkd/precompute_sam_prior.py THIS_CONFIG \
#            --checkpoint checkpoints/mobile_sam.pt --out-dir data/ShipRSImageNet/sam_prior --split train
# LoadSAMPrior loads each image's prior as a segmentation map, so Resize and RandomFlip move it
# with the image; EDE reads it from the data samples instead of running MobileSAM.
_base_ = './ifkd_retinanet_r50-mnv2_fpn_100e_shiprs.py'
prior_dir = 'data/ShipRSImageNet/sam_prior/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSAMPrior', prior_dir=prior_dir),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
model = dict(distill_losses=[
    dict(type='IFKDFeatureLoss', student_channels=256, teacher_channels=256,
         ede=dict(mode='cached')),
    dict(type='IFKDHeadLoss')
])
