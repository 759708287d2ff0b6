# Fine-tuning on a seeded random 10 % of DIOR-R's train + val images (the same images for the
# same seed on every machine: RandomSubsetDataset). Paper AP50 with 10 %: see the README.
_base_ = './ars-detr_r50_3x_dior-r_mutdet-pretrained.py'
train_dataloader = dict(dataset=dict(
    _delete_=True, type='RandomSubsetDataset', fraction=0.1, seed=0,
    dataset={{_base_.train_dataloader.dataset}}))
