# ERKT-Net demo data and schedule, sized for a CPU: the synthetic NWPU-RESISC45-layout folders of
# tools/data/make_synthetic.py (5 classes; `--out data/synthetic_erkt --datasets nwpu45
# --per-class 40 --scene-img-size 64`), train ratio 50%, 64 x 64 images, batch 10, 30 epochs,
# models trained from scratch. The pipelines are those of ../../_base_/runtime_600e.py at 64 px
# (RandomResizedCrop scaled with the image: 176 / 256 * 64 = 44 px).
_base_ = ['../../../_base_/datasets/nwpu45.py', '../../_base_/runtime_600e.py']
custom_imports = dict(imports=['ifkd_mm', 'ifkd_mm.classification'], allow_failed_imports=False)
data_root = 'data/synthetic_erkt/NWPU-RESISC45/'
num_classes = 5
train_ratio = 0.5
max_epochs = 30
img_size = 64

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='PackInputs')
]
vsm_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='GFU', function='ColorJitter', prob=1.0,
         params=dict(brightness=0.5, contrast=0.5, saturation=0.5)),
    dict(type='GFU', function='RandomRotation', prob=1.0, params=dict(degrees=180)),
    dict(type='GFU', function='HorizontalFlip', prob=0.9),
    dict(type='GFU', function='VerticalFlip', prob=0.9),
    dict(type='GFU', function='Grayscale', prob=0.1),
    dict(type='GFU', function='AutoContrast', prob=0.1),
    dict(type='GFU', function='RandomErasing', prob=1.0,
         params=dict(value={{_base_.erase_value}})),
    dict(type='GFU', function='RandomResizedCrop', prob=0.1, params=dict(size=44)),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='PackInputs')
]
ordinary_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='GFU', function='ColorJitter', prob=1.0,
         params=dict(brightness=0.5, contrast=0.5, saturation=0.5)),
    dict(type='GFU', function='RandomRotation', prob=1.0, params=dict(degrees=180)),
    dict(type='GFU', function='HorizontalFlip', prob=0.5),
    dict(type='GFU', function='VerticalFlip', prob=0.5),
    dict(type='GFU', function='Grayscale', prob=0.1),
    dict(type='GFU', function='AutoContrast', prob=0.1),
    dict(type='PackInputs')
]

data_preprocessor = dict(
    num_classes=num_classes,
    batch_augments=dict(augments=[dict(type='CutMix', alpha=1.0)], probs=[0.1]))
train_dataloader = dict(
    batch_size=10,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, train_ratio=train_ratio, pipeline=ordinary_train_pipeline))
val_dataloader = dict(
    batch_size=20,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, train_ratio=train_ratio, pipeline=test_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
# From scratch on a few images a larger learning rate than the paper's 2e-4 (pre-trained) helps.
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs,
         eta_min=0, convert_to_iter_based=True)
]
default_hooks = dict(
    logger=dict(interval=5),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1, save_optimizer=False))

work_root = 'work_dirs/erkt-net/demo/'
teacher_members = [
    dict(name='B0', weight=0.3,
         config='configs/erkt-net/demo/efficientnet-b0_demo_synthetic-nwpu45.py',
         checkpoint=work_root + f'efficientnet-b0_demo_synthetic-nwpu45/epoch_{max_epochs}.pth'),
    dict(name='B3', weight=0.4,
         config='configs/erkt-net/demo/efficientnet-b3_demo_synthetic-nwpu45.py',
         checkpoint=work_root + f'efficientnet-b3_demo_synthetic-nwpu45/epoch_{max_epochs}.pth'),
    dict(name='R50', weight=0.3,
         config='configs/erkt-net/demo/resnet50_demo_synthetic-nwpu45.py',
         checkpoint=work_root + f'resnet50_demo_synthetic-nwpu45/epoch_{max_epochs}.pth'),
]
