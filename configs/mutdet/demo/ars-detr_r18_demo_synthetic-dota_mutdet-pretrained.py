# The ARS-DETR demo fine-tuned from the MutDet demo pre-training (converted by
# tools/mutdet/convert_pretrained.py); tools/mutdet/run_demo.sh compares it with the same
# fine-tuning from scratch.
_base_ = '../../ars-detr/demo/ars-detr_r18_demo_synthetic-dota.py'
load_from = 'work_dirs/mutdet-demo/pretrain/ars-detr_init.pth'
