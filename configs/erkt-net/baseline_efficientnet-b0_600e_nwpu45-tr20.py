# Table 9 "Base" on NWPU-RESISC45 (train ratio 20%): the EfficientNet-B0 student trained without
# distillation, with the usual augmentation (CutMix 0.1, flips 0.5, no random erasing or random
# resized crop; section 4.6). The same recipe trains the B0 teacher member.
_base_ = ['./teachers/efficientnet-b0_600e_nwpu45-tr20.py']
