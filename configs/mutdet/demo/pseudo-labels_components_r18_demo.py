# Demo pseudo-labels for the synthetic DOTA patches on a CPU in about a minute: connected components
# of the non-background pixels instead of SAM (ComponentMaskGenerator), a ResNet-18 with random
# weights pooled from 64 px crops, PCA to 32-d and 16 clusters.
mask_generator = dict(type='ComponentMaskGenerator', threshold=40)
embedder = dict(type='BoxEmbedder',
                backbone=dict(type='mmdet.ResNet', depth=18, out_indices=(3, ), init_cfg=None),
                crop_size=64, enlarge=1.5, image_size=None, batch_size=64, device='cpu')
box_filter = dict(min_area=16, min_side=2)
clustering = dict(dim=32, num_clusters=16, batch_size=512)
