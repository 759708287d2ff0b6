# IFKD's distillation losses (ifkd.txt section 3.4): L = L_GT + alpha L_feat + beta L_head; EDE
# (MobileSAM prior), FDR and HSM all on. The feature loss must come before the head loss: the
# head loss reuses its HSM masks (eq. 12 and 13 share M_HSM).
# Weights: alpha = 1e-4, beta = 1e-3, those of the authors' released code, which normalises the
# terms as we do (sum over channels, mask-weighted mean over locations). The paper's
# alpha = 0.06 / beta = 0.5 (section 4.5) are 600x / 500x these under that normalisation and
# make the feature term tens to hundreds of times the detection loss; they are kept as the
# variants configs/ifkd/ifkd-paper-weights_*.py.
# mobile_sam.pt (about 39 MB) is downloaded by the user from the MobileSAM project; for
# EDE's cached mode see tools/ifkd/precompute_sam_prior.py and the README.
mobile_sam_checkpoint = 'checkpoints/mobile_sam.pt'
fpn_channels = 256
ifkd_alpha = 1e-4
ifkd_beta = 1e-3
ifkd_losses = [
    dict(type='IFKDFeatureLoss', student_channels=fpn_channels, teacher_channels=fpn_channels,
         alpha=ifkd_alpha, ede=dict(checkpoint=mobile_sam_checkpoint), fdr=dict(), hsm=dict()),
    dict(type='IFKDHeadLoss', beta=ifkd_beta, hsm=dict())
]
