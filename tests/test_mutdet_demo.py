"""tools/mutdet/run_demo.sh end to end on a small synthetic DOTA copy: pseudo-labels, pre-training,
conversion, both fine-tunings and both tests through the project's tools (this is also the ARS-DETR
demo config's run through tools/train.py and tools/test.py with the merged DOTA metric)."""
import json
import os
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def test_demo_chain_prints_both_maps_and_fine_tunes_from_the_converted_pre_training(tmp_path):
    env = dict(os.environ, MUTDET_DEMO_ROOT=str(tmp_path), MUTDET_DEMO_EPOCHS='1',
               MUTDET_DEMO_FINETUNE_EPOCHS='1', IFKD_MM_VENV=sys.prefix,
               MUTDET_DEMO_SYNTHETIC='--num-train 4 --num-val 1 --img-size 192')
    done = subprocess.run(['bash', osp.join(REPO, 'tools/mutdet/run_demo.sh')], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout + done.stderr
    assert '4 images, 16 patches of 128 px' in out and '4 patches merged into 1 images' in out

    work = tmp_path / 'work_dirs' / 'mutdet-demo'
    labels = sorted((work / 'pseudo_labels' / 'labels').glob('*.npz'))
    assert len(labels) == 16
    boxes = sum(len(np.load(path)['boxes']) for path in labels)
    assert boxes >= 16  # at least one box per cluster was needed to fit the 16 clusters

    pretrained = torch.load(work / 'pretrain' / 'ars-detr_init.pth', map_location='cpu',
                            weights_only=False)['state_dict']
    assert not any(key.startswith(('enhancement.', 'embedding_head.')) for key in pretrained)
    assert not any(key.startswith('bbox_head.cls_branches.') for key in pretrained)
    # The fine-tuning starts from the conversion: only the class heads (and the denoising label
    # embedding) are reported missing, nothing unexpected.
    missing = re.search(r'missing keys in source state_dict: (.*)', out).group(1).split(', ')
    assert {key.split('.')[0] + '.' + key.split('.')[1] for key in missing} == {
        'bbox_head.cls_branches', 'dn_query_generator.label_embedding'}
    assert 'unexpected key' not in out

    table = out[out.index('ARS-DETR demo fine-tuned for 1 epochs'):].splitlines()
    rows = {line[:34].strip(): float(line[34:]) for line in table[2:4]}
    for label, run in (('from scratch', 'scratch'), ('MutDet pre-training (1 epochs)', 'finetune')):
        tested = json.loads((work / f'test_{run}' / 'metrics.json').read_text())['dota/mAP']
        assert f'dota/mAP: {tested}' in (work / f'{run}.txt').read_text()
        assert 0.0 <= tested <= 1.0 and rows[label] == round(tested, 3)
