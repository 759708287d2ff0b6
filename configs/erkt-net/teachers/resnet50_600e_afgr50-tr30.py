# resnet50 teacher of ERKT-Net on AFGR50 (train ratio 30%): ImageNet-pretrained, 600 epochs,
# the usual augmentation.
_base_ = ['../_base_/datasets/afgr50-tr30.py', '../_base_/models/resnet50.py']
model = dict(head=dict(num_classes={{_base_.num_classes}}))
