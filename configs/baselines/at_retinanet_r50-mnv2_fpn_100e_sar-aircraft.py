# IFKD Table 3 baseline:
# AT (Zagoruyko and Komodakis, ICLR 2017) attention transfer on every FPN level.
_base_ = './_base_/distill_retinanet_r50-mnv2_fpn_100e_sar-aircraft.py'
model = dict(distill_losses=[dict(type='ATLoss')])
