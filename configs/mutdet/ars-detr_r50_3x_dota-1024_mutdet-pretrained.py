# Fine-tuning ARS-DETR R50 on DOTA-v1.0 (1024 px patches) from MutDet's converted pre-training.
# Paper: AP50 / AP75 72.9 / 49.6 from ImageNet -> 74.5 / 51.6 with MutDet.
_base_ = '../ars-detr/ars-detr_r50_3x_dota-1024.py'
load_from = 'work_dirs/mutdet_ars-detr_r50_36e_dota-800-pretrain/ars-detr_init.pth'
