# The public code's pre-training: 2 encoder and 2 decoder layers (the paper says 6 + 6).
_base_ = './mutdet_ars-detr_r50_36e_dota-800-pretrain.py'
model = dict(encoder=dict(num_layers=2), decoder=dict(num_layers=2))
