# The public code's mask settings (segment-anything's defaults: 32 x 32 points, box NMS 0.7)
# instead of the paper's 64 x 64 / 0.8; everything else as the paper.
_base_ = './pseudo-labels_sam-vit-h_r50.py'
mask_generator = dict(preset='public')
