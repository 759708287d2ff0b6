# ARS-DETR R50 on DIOR-R (20 classes, 800 px images, trained on train + val, tested on test with
# AP50 and AP75), the paper's 3x schedule; the fine-tuning target of MutDet.
_base_ = ['../_base_/datasets/dior_r.py', './_base_/ars-detr_r50_3x.py']

model = dict(bbox_head=dict(num_classes=20))
