# efficientnet-b3 teacher of ERKT-Net on AID (train ratio 20%): ImageNet-pretrained, 600 epochs,
# the usual augmentation.
_base_ = ['../_base_/datasets/aid-tr20.py', '../_base_/models/efficientnet-b3.py']
model = dict(head=dict(num_classes={{_base_.num_classes}}))
