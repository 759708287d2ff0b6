# efficientnet-b0 teacher of ERKT-Net on AID (train ratio 50%): ImageNet-pretrained, 600 epochs,
# the usual augmentation.
_base_ = ['../_base_/datasets/aid-tr50.py', '../_base_/models/efficientnet-b0.py']
model = dict(head=dict(num_classes={{_base_.num_classes}}))
