# MutDet's pseudo-labels (section 3.1), the paper's settings: SAM ViT-H automatic masks (64 x 64
# point grid, box NMS 0.8), each mask's minimum-area rectangle as an le90 box, the box enlarged
# 1.5x and cropped to 224 x 224 from the image resized to 1024 (ImageNet-normalised), a frozen
# ImageNet ResNet-50 pooled to 2048-d, PCA to 256-d and k-means into 256 pseudo classes.
#   python tools/mutdet/make_pseudo_labels.py configs/mutdet/pseudo-labels_sam-vit-h_r50.py \
#       --images data/DOTA/split_800/trainval/images --out data/mutdet/dota-800
mask_generator = dict(
    type='MaskGenerator', variant='vit_h', checkpoint='checkpoints/sam_vit_h_4b8939.pth',
    preset='paper', device='cpu')
embedder = dict(type='BoxEmbedder', crop_size=224, enlarge=1.5, image_size=1024, batch_size=64,
                device='cpu')  # backbone: ImageNet ResNet-50 stage 4 (torchvision weights)
box_filter = dict(min_area=16, min_side=2)  # smaller masks are dropped and counted
clustering = dict(dim=256, num_clusters=256, batch_size=4096)
