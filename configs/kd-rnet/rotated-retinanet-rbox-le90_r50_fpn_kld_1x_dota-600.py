# KD-RNet's teacher (Table II): rotated RetinaNet ResNet-50 FPN, focal + KLD losses, on DOTA
# 600x600 patches; mmrotate's 1x schedule (the paper gives none).
_base_ = [
    './_base_/dota-600.py', './_base_/rotated-retinanet-rbox-le90_r50_fpn_kld.py',
    'mmrotate::_base_/schedules/schedule_1x.py'
]
