# IFKD's distillation losses (ifkd.txt section 3.4): L = L_GT + alpha L_feat + beta L_head with
# alpha = 0.06, beta = 0.5; EDE (MobileSAM prior), FDR and HSM all on. The feature loss must come
# before the head loss: the head loss reuses its HSM masks (eq. 12 and 13 share M_HSM).
# mobile_sam.pt (about 39 MB) is downloaded by the user from the MobileSAM project; for
# EDE's cached mode see tools/ifkd/precompute_sam_prior.py and the README.
mobile_sam_checkpoint = 'checkpoints/mobile_sam.pt'
fpn_channels = 256
ifkd_losses = [
    dict(type='IFKDFeatureLoss', student_channels=fpn_channels, teacher_channels=fpn_channels,
         alpha=0.06, ede=dict(checkpoint=mobile_sam_checkpoint), fdr=dict(), hsm=dict()),
    dict(type='IFKDHeadLoss', beta=0.5, hsm=dict())
]
