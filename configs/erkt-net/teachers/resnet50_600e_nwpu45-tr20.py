# resnet50 teacher of ERKT-Net on NWPU-RESISC45 (train ratio 20%): ImageNet-pretrained, 600 epochs,
# the usual augmentation.
_base_ = ['../_base_/datasets/nwpu45-tr20.py', '../_base_/models/resnet50.py']
model = dict(head=dict(num_classes={{_base_.num_classes}}))
