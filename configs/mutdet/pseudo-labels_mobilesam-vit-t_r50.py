# MobileSAM (vit_t, about 10 M parameters) instead of SAM ViT-H for the masks: the paper's point
# grid and NMS, everything else as the paper. Much faster on a CPU (README: time per image).
_base_ = './pseudo-labels_sam-vit-h_r50.py'
mask_generator = dict(variant='vit_t', checkpoint='checkpoints/mobile_sam.pt')
