# Fine-tuning ARS-DETR R50 on DIOR-R (100 % of train + val) from MutDet's pre-training, converted by
#   python tools/mutdet/convert_pretrained.py \
#       work_dirs/mutdet_ars-detr_r50_36e_dota-800-pretrain/epoch_36.pth \
#       work_dirs/mutdet_ars-detr_r50_36e_dota-800-pretrain/ars-detr_init.pth
# (the enhancement module, the embedding head and the pseudo-class heads dropped). Paper: AP50 / AP75
# 65.7 / 45.7 from ImageNet -> 70.7 / 51.2 with MutDet.
_base_ = '../ars-detr/ars-detr_r50_3x_dior-r.py'
load_from = 'work_dirs/mutdet_ars-detr_r50_36e_dota-800-pretrain/ars-detr_init.pth'
