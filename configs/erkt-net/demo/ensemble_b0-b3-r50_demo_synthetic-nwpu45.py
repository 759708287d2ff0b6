# Demo teacher ensemble: the three demo teachers weighted 0.3 / 0.4 / 0.3 (section 3.1).
_base_ = ['./efficientnet-b0_demo_synthetic-nwpu45.py']
model = dict(_delete_=True, type='TeacherEnsemble', members={{_base_.teacher_members}})
work_dir = 'work_dirs/erkt-net/demo/ensemble_b0-b3-r50_demo_synthetic-nwpu45'
