"""MutDet pre-training detector: both branches' losses, shared modules, frozen backbone."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from .conftest import REPO

PRETRAIN_DEMO = osp.join(REPO, 'configs/mutdet/demo/'
                         'mutdet_ars-detr_r18_demo_synthetic-dota-pretrain.py')


@pytest.fixture(autouse=True)
def mmrotate_scope():
    import ifkd_mm  # noqa: F401
    init_default_scope('mmrotate')


def build(config: Config):
    from mmrotate.registry import MODELS

    torch.manual_seed(0)
    model = MODELS.build(config)
    model.init_weights()
    return model


def pseudo_sample(num_boxes: int, seed: int):
    from mmdet.structures import DetDataSample
    from mmrotate.structures.bbox import RotatedBoxes

    generator = torch.Generator().manual_seed(seed)
    sample = DetDataSample(metainfo=dict(img_shape=(128, 128), scale_factor=(1.0, 1.0),
                                         batch_input_shape=(128, 128)))
    boxes = torch.cat([torch.rand(num_boxes, 2, generator=generator) * 90 + 20,
                       torch.rand(num_boxes, 2, generator=generator) * 20 + 6,
                       torch.rand(num_boxes, 1, generator=generator) * 3 - 1.5], 1)
    sample.gt_instances = InstanceData(
        bboxes=RotatedBoxes(boxes), labels=torch.randint(0, 16, (num_boxes, ), generator=generator),
        embeddings=torch.randn(num_boxes, 32, generator=generator))
    return sample


def batch(model, counts=(5, 0)):
    samples = [pseudo_sample(n, seed) for seed, n in enumerate(counts)]
    images = list(torch.rand(len(counts), 3, 128, 128, generator=torch.Generator().manual_seed(9))
                  * 255)
    return model.data_preprocessor(dict(inputs=images, data_samples=samples), True)


def test_both_branches_give_every_loss_and_reach_every_trainable_parameter():
    model = build(Config.fromfile(PRETRAIN_DEMO).model)
    model.train()
    losses = model(**batch(model), mode='loss')
    for prefix in ('', 'aux.'):
        assert {f'{prefix}{name}' for name in (
            'loss_cls', 'loss_bbox', 'loss_iou', 'loss_angle', 'enc_loss_cls', 'dn_loss_angle',
            'd0.loss_angle', 'loss_ca_dec')} <= set(losses)
    assert 'loss_ca_enc' in losses and 'aux.loss_ca_enc' not in losses
    assert all(torch.isfinite(value).all() for value in losses.values())
    sum(value for name, value in losses.items() if 'loss' in name).backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert not [n for n, p in trainable if p.grad is None]
    assert not any(n.startswith('backbone.') for n, _ in trainable)
    assert any(n.startswith('enhancement.') for n, _ in trainable)


def test_siamese_branch_reuses_the_decoder_and_heads():
    from mmrotate.registry import MODELS

    config = Config.fromfile(PRETRAIN_DEMO).model
    mutdet = build(config)
    plain = dict(config, type='ARSDETR')
    for key in ('enhancement', 'object_dims', 'max_objects', 'tau'):
        plain.pop(key, None)
    ars_detr = MODELS.build(plain)
    extra = {name for name in mutdet.state_dict() if name not in ars_detr.state_dict()}
    assert extra and all(name.startswith(('enhancement.', 'embedding_head.')) for name in extra)
    assert set(ars_detr.state_dict()) <= set(mutdet.state_dict())


def test_frozen_backbone_is_unchanged_after_training_steps():
    model = build(Config.fromfile(PRETRAIN_DEMO).model)
    model.train()
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    data = batch(model, counts=(4, 3))
    head_before = model.bbox_head.reg_branches[0][0].weight.clone()
    for _ in range(2):
        losses = model(**data, mode='loss')
        optimizer.zero_grad()
        sum(value for name, value in losses.items() if 'loss' in name).backward()
        optimizer.step()
    after = model.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm statistics too
    assert not torch.equal(head_before, model.bbox_head.reg_branches[0][0].weight)


def test_pseudo_boxes_beyond_the_cap_are_the_smallest_and_left_out():
    config = Config.fromfile(PRETRAIN_DEMO).model
    config.max_objects = 2
    model = build(config)
    model.train()
    data = batch(model, counts=(6, 1))
    seen = {}
    original = model.bbox_head.loss

    def recording_loss(**kwargs):
        seen.setdefault('gts', [s.gt_instances for s in kwargs['batch_data_samples']])
        return original(**kwargs)

    model.bbox_head.loss = recording_loss
    model(**data, mode='loss')
    boxes = data['data_samples'][0].gt_instances.bboxes.tensor
    areas = boxes[:, 2] * boxes[:, 3]
    kept = seen['gts'][0].bboxes.tensor
    assert len(kept) == 2 and len(seen['gts'][1]) == 1
    assert torch.allclose(kept[:, 2] * kept[:, 3], areas.sort(descending=True).values[:2])
