# The ERKT-Net teacher ensemble on AID (train ratio 50%): EfficientNet-B0 / EfficientNet-B3 /
# ResNet-50 weighted 0.3 / 0.4 / 0.3 (section 3.1). Evaluate it with tools/test.py (no checkpoint:
# the members load theirs); search its weights with tools/erkt/search_weights.py (eq. 14).
_base_ = ['./teachers/efficientnet-b0_600e_aid-tr50.py']
model = dict(_delete_=True, type='TeacherEnsemble', members={{_base_.teacher_members}})
