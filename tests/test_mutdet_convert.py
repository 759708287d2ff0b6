"""MutDet weight transfer (pre-training -> ARS-DETR fine-tuning) and the seeded data subsets of
the fine-tuning configs."""
import os.path as osp
from collections import OrderedDict

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import BaseDataset
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope
from torch import nn

import ifkd_mm  # noqa: F401 (registers the modules)
import ifkd_mm.datasets.subset  # noqa: F401 (registers RandomSubsetDataset)
from ifkd_mm.datasets.subset import RandomSubsetDataset, subset_indices, subset_size
from ifkd_mm.models.mutdet.convert import convert_pretrained, load_report

from .conftest import REPO

DEMO = osp.join(REPO, 'configs/ars-detr/demo/ars-detr_r18_demo_synthetic-dota.py')
DIOR_R = osp.join(REPO, 'configs/ars-detr/ars-detr_r50_3x_dior-r.py')
DIOR_R_DATA = osp.join(REPO, 'configs/_base_/datasets/dior_r.py')
MUTDET_DEMOS = osp.join(REPO, 'configs/mutdet/demo')
MUTDET_DEMO = osp.join(MUTDET_DEMOS, 'mutdet_ars-detr_r18_demo_synthetic-dota-pretrain.py')
FINETUNE_DEMO = osp.join(MUTDET_DEMOS, 'ars-detr_r18_demo_synthetic-dota_mutdet-pretrained.py')
# MutDet.PSEUDO_CLASS_KEYS, as the detector defines them (ARSDETR's names)
PSEUDO_CLASS_KEYS = ('bbox_head.cls_branches.', 'dn_query_generator.label_embedding.')


def pretraining_like_state_dict() -> OrderedDict:
    state = OrderedDict([
        ('backbone.conv1.weight', torch.randn(4, 3)),
        ('enhancement.layers.0.weight', torch.randn(2, 2)),
        ('encoder.layers.0.weight', torch.randn(3)),
        ('enhancements_gate.weight', torch.randn(1)),  # a prefix is literal: not 'enhancement.'
        ('embedding_head.1.bias', torch.randn(5)),
        ('embedding_head.0.weight', torch.randn(5, 5)),
        ('bbox_head.cls_branches.0.weight', torch.randn(256, 8)),
    ])
    state._metadata = OrderedDict([('', dict(version=1)), ('backbone.bn1', dict(version=2))])
    return state


def test_convert_drops_exactly_the_prefixed_keys_and_keeps_the_rest_in_order():
    state = pretraining_like_state_dict()
    kept, dropped = convert_pretrained(state, ('enhancement.', 'embedding_head.'))
    assert dropped == ['embedding_head.0.weight', 'embedding_head.1.bias',
                       'enhancement.layers.0.weight']
    assert list(kept) == ['backbone.conv1.weight', 'encoder.layers.0.weight',
                          'enhancements_gate.weight', 'bbox_head.cls_branches.0.weight']
    assert all(kept[key] is state[key] for key in kept)  # the same tensors, not copies
    assert kept._metadata == state._metadata  # module versions reach load_state_dict
    assert len(state) == 7  # the input is left alone


def test_convert_refuses_unknown_empty_and_all_consuming_prefixes():
    state = pretraining_like_state_dict()
    with pytest.raises(ValueError, match=r"'embeding_head\.' matches no key"):
        convert_pretrained(state, ('enhancement.', 'embeding_head.'))
    with pytest.raises(ValueError, match='empty prefix'):
        convert_pretrained(state, ('enhancement.', ''))
    with pytest.raises(ValueError, match='drop_prefixes is empty'):
        convert_pretrained(state, ())
    with pytest.raises(ValueError, match='leaves no weights'):
        convert_pretrained(state, ('e', 'b'))


def test_load_report_on_a_small_module_skips_and_reports_a_shape_mismatch():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    before = {key: value.clone() for key, value in model.state_dict().items()}
    state = OrderedDict([('0.weight', torch.ones(3, 2)), ('0.bias', torch.ones(4)),
                         ('1.weight', torch.full((3,), 2.)), ('1.running_mean', torch.ones(3)),
                         ('2.weight', torch.ones(1))])
    # as saved from a current model: without its module versions BatchNorm would take the dict
    # for an old one and fill in num_batches_tracked
    state._metadata = model.state_dict()._metadata
    report = load_report(model, state)
    assert report == dict(missing=['1.bias', '1.num_batches_tracked', '1.running_var'],
                          unexpected=['2.weight'], shape_mismatch=['0.bias'])
    loaded = model.state_dict()
    assert torch.equal(loaded['0.weight'], torch.ones(3, 2))
    assert torch.equal(loaded['1.weight'], torch.full((3,), 2.))
    assert torch.equal(loaded['1.running_mean'], torch.ones(3))
    for key in ('0.bias', '1.bias', '1.running_var'):  # skipped or missing: left as they were
        assert torch.equal(loaded[key], before[key]), key


def demo_detector(seed: int, **bbox_head):
    from mmrotate.registry import MODELS

    init_default_scope('mmrotate')
    cfg = Config.fromfile(DEMO)
    cfg.model.bbox_head.update(bbox_head)
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def test_ars_detr_without_its_class_branches_loads_with_exactly_those_missing():
    source = demo_detector(seed=0).state_dict()
    kept, dropped = convert_pretrained(source, ('bbox_head.cls_branches.',))
    assert len(dropped) == 2 * 3  # weight and bias of 2 decoder layers + the encoder's
    target = demo_detector(seed=1)
    own_class_branches = {key: target.state_dict()[key].clone() for key in dropped}
    report = load_report(target, kept)
    assert report == dict(missing=dropped, unexpected=[], shape_mismatch=[])
    loaded = target.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in kept.items())
    assert all(torch.equal(loaded[key], value) for key, value in own_class_branches.items())
    weight = 'bbox_head.cls_branches.0.weight'  # the biases start at the same prior constant
    assert not torch.equal(loaded[weight], source[weight])  # another seed, another init


def test_pseudo_class_heads_of_another_class_count_are_reported_not_loaded():
    """256 pseudo classes against 20 fine-tuning classes: the classifiers and the denoising label
    embedding differ in shape; the load goes on and names exactly them."""
    pretrained = demo_detector(seed=0, num_classes=256).state_dict()
    finetune = demo_detector(seed=1, num_classes=20)
    report = load_report(finetune, pretrained)
    expected = sorted(key for key in pretrained if key.startswith(PSEUDO_CLASS_KEYS))
    assert len(expected) == 2 * 3 + 1
    assert report == dict(missing=[], unexpected=[], shape_mismatch=expected)
    assert finetune.bbox_head.cls_branches[0].weight.shape == (20, 64)


def convert_tool(argv: list) -> dict:
    """tools/mutdet/convert_pretrained.py in this process."""
    from tools.mutdet.convert_pretrained import main

    return main(argv)


def test_tool_converts_an_mmengine_checkpoint_and_reports_the_fine_tuning_load(tmp_path, capsys):
    source = demo_detector(seed=0).state_dict()
    hub = MessageHub.get_instance('test_mutdet_convert')
    hub.update_scalar('train/loss', 1.5)
    checkpoint = str(tmp_path / 'pretrain.pth')
    torch.save(dict(meta=dict(epoch=3, iter=120, dataset_meta=dict(classes=('0', '1'))),
                    state_dict=source, message_hub=hub.state_dict()), checkpoint)
    out = str(tmp_path / 'converted' / 'finetune_init.pth')
    prefixes = ['bbox_head.cls_branches.', 'neck.extra_convs.']
    result = convert_tool([checkpoint, out, '--drop', *prefixes, '--keep-pseudo-class-heads',
                           '--finetune-config', DEMO])
    printed = capsys.readouterr().out
    assert 'dropped    6 keys bbox_head.cls_branches.*' in printed
    dropped_neck = sorted(key for key in source if key.startswith('neck.extra_convs.'))
    assert f'dropped {len(dropped_neck):4d} keys neck.extra_convs.*' in printed
    assert f'kept {len(source) - 6 - len(dropped_neck)} of {len(source)} keys' in printed

    written = torch.load(out)  # weights_only: plain tensors and builtins
    dropped = sorted(key for key in source if key.startswith(tuple(prefixes)))
    assert written['meta']['dropped_keys'] == dropped
    assert written['meta']['dropped_prefixes'] == prefixes
    assert written['meta']['source'] == checkpoint
    assert written['meta']['source_meta'] == dict(epoch=3, iter=120)
    assert list(written['state_dict']) == [key for key in source if key not in dropped]
    assert all(torch.equal(written['state_dict'][key], source[key])
               for key in written['state_dict'])
    assert result['load_report'] == dict(missing=dropped, unexpected=[], shape_mismatch=[])
    assert f'  missing: {len(dropped)}\n' in printed and '  unexpected: 0\n' in printed


def test_tool_default_drops_mutdets_pretraining_modules_and_pseudo_class_heads(tmp_path, capsys):
    """A MutDet pre-training checkpoint (the demo's detector): after the default conversion the
    fine-tuning ARS-DETR misses exactly the pseudo-class heads and their denoising label embedding,
    expects nothing else and gets every other tensor unchanged; with --keep-pseudo-class-heads the
    16-cluster heads are carried over and, against the demo's 15 classes, reported as another
    shape."""
    from mmrotate.registry import MODELS

    from ifkd_mm.models.mutdet.detector import MutDet

    init_default_scope('mmrotate')
    torch.manual_seed(0)
    source = MODELS.build(Config.fromfile(MUTDET_DEMO).model).state_dict()
    checkpoint = str(tmp_path / 'mutdet.pth')
    torch.save(dict(meta=dict(epoch=6), state_dict=source), checkpoint)
    out = str(tmp_path / 'ars-detr_init.pth')
    result = convert_tool([checkpoint, out, '--finetune-config', FINETUNE_DEMO])
    printed = capsys.readouterr().out
    assert MutDet.PRETRAINING_ONLY + MutDet.PSEUDO_CLASS_KEYS == \
        ('enhancement.', 'embedding_head.') + PSEUDO_CLASS_KEYS
    for prefix in result['dropped_prefixes']:
        count = sum(key.startswith(prefix) for key in source)
        assert count > 0 and f'dropped {count:4d} keys {prefix}*' in printed
    pseudo_class = sorted(key for key in source if key.startswith(PSEUDO_CLASS_KEYS))
    assert result['load_report'] == dict(missing=pseudo_class, unexpected=[], shape_mismatch=[])
    written = torch.load(out)['state_dict']
    assert not any(key.startswith(MutDet.PRETRAINING_ONLY) for key in written)
    assert list(written) == [key for key in source if key not in result['dropped_keys']]
    assert all(torch.equal(value, source[key]) for key, value in written.items())

    kept_heads = convert_tool([checkpoint, out, '--keep-pseudo-class-heads',
                               '--finetune-config', FINETUNE_DEMO])
    assert kept_heads['dropped_prefixes'] == list(MutDet.PRETRAINING_ONLY)
    assert kept_heads['load_report'] == dict(missing=[], unexpected=[],
                                             shape_mismatch=pseudo_class)


def test_tool_names_a_checkpoint_without_a_state_dict_and_a_prefix_that_matches_nothing(
        tmp_path):
    bare = str(tmp_path / 'bare.pth')
    torch.save(dict(weight=torch.ones(1)), bare)
    with pytest.raises(ValueError, match=r"bare\.pth is not an mmengine checkpoint"):
        convert_tool([bare, str(tmp_path / 'out.pth'), '--drop', 'weight',
                      '--keep-pseudo-class-heads'])
    checkpoint = str(tmp_path / 'ckpt.pth')
    torch.save(dict(state_dict=OrderedDict(weight=torch.ones(1), bias=torch.ones(1))), checkpoint)
    with pytest.raises(ValueError, match="'enhancement.' matches no key"):
        convert_tool([checkpoint, str(tmp_path / 'out.pth'), '--drop', 'enhancement.',
                      '--keep-pseudo-class-heads'])
    assert not osp.exists(tmp_path / 'out.pth')


def test_fine_tuning_detector_is_built_without_downloading_pretrained_weights():
    from tools.mutdet.convert_pretrained import without_pretrained_init

    model = Config.fromfile(DIOR_R).model
    assert model.backbone.init_cfg.type == 'Pretrained'
    cleaned = without_pretrained_init(model)
    assert cleaned.backbone.init_cfg is None
    assert cleaned.backbone.depth == model.backbone.depth and cleaned.neck == model.neck
    mixed = without_pretrained_init(dict(init_cfg=[
        dict(type='Pretrained', checkpoint='x.pth'), dict(type='Normal', std=0.01)]))
    assert mixed == dict(init_cfg=[dict(type='Normal', std=0.01)])


# ------------------------------------------------------------ RandomSubsetDataset -------------

class NumberedDataset(BaseDataset):
    """``num`` samples ``{'number': i}``, no files."""

    def __init__(self, num: int, **kwargs):
        self.num = num
        super().__init__(serialize_data=False, **kwargs)

    def load_data_list(self) -> list:
        return [dict(number=i) for i in range(self.num)]


def kept_numbers(dataset) -> list:
    return [dataset[i]['number'] for i in range(len(dataset))]


def test_subset_size_rounds_half_up_with_at_least_one_sample():
    assert subset_size(20, 0.1) == 2
    assert subset_size(9, 0.5) == 5  # 4.5 -> 5 (Python's round would give 4)
    assert subset_size(11, 0.25) == 3  # 2.75
    assert subset_size(3, 0.01) == 1
    assert subset_size(7, 1) == 7


def test_subset_is_reproducible_for_a_seed_and_another_for_another_seed():
    assert subset_indices(20, 0.1, seed=0) == [4, 19]  # numpy PCG64, the same on every machine
    assert subset_indices(20, 0.1, seed=1) == [1, 10]
    first = RandomSubsetDataset(NumberedDataset(20), fraction=0.5, seed=3)
    again = RandomSubsetDataset(NumberedDataset(20), fraction=0.5, seed=3)
    other = RandomSubsetDataset(NumberedDataset(20), fraction=0.5, seed=4)
    assert len(first) == len(other) == 10
    assert kept_numbers(first) == kept_numbers(again) == first.get_subset_info()['indices']
    assert kept_numbers(first) == sorted(set(kept_numbers(first)))
    assert kept_numbers(other) != kept_numbers(first)
    assert kept_numbers(RandomSubsetDataset(NumberedDataset(20), 0.1)) == [4, 19]
    assert kept_numbers(RandomSubsetDataset(NumberedDataset(20), 1.0, seed=9)) == list(range(20))


@pytest.mark.parametrize('fraction', [0, -0.1, 1.5, '0.5', True, float('nan')])
def test_subset_refuses_a_fraction_outside_0_1(fraction):
    with pytest.raises(ValueError, match=r'fraction must be a number in \(0, 1\]'):
        RandomSubsetDataset(NumberedDataset(4), fraction=fraction)


def test_subset_refuses_an_empty_dataset():
    with pytest.raises(ValueError, match='empty dataset'):
        RandomSubsetDataset(NumberedDataset(0), fraction=0.5)


def test_dior_r_training_set_subset_built_through_both_registries(synthetic_root):
    """The DIOR-R training set (train + val, a ConcatDataset) wrapped in a config, as the
    fine-tuning configs with k % of the data do; lazily in mmrotate's scope, and in mmdet's."""
    from ifkd_mm.registry import DATASETS, ROTATED_DATASETS

    init_default_scope('mmrotate')
    cfg = Config.fromfile(DIOR_R_DATA)
    full_cfg = cfg.train_dataloader.dataset
    for sub in full_cfg.datasets:
        sub.data_root = osp.join(synthetic_root, 'DIOR-R') + '/'
    full = ROTATED_DATASETS.build(full_cfg)
    assert len(full) == 9  # 6 train + 3 val images
    subset = ROTATED_DATASETS.build(dict(type='RandomSubsetDataset', dataset=full_cfg,
                                         fraction=0.5, seed=0, lazy_init=True))
    assert not subset._fully_initialized
    assert subset.metainfo['classes'] == full.metainfo['classes']
    assert len(subset) == 5 and subset.get_subset_info() == dict(
        fraction=0.5, seed=0, num_wrapped=9, indices=[2, 3, 4, 5, 6])
    for position, index in enumerate([2, 3, 4, 5, 6]):
        assert subset.get_data_info(position)['img_id'] == full.get_data_info(index)['img_id']
    sample = subset[4]
    assert sample['data_samples'].img_id == full.get_data_info(6)['img_id']
    assert sample['inputs'].shape[0] == 3 and len(sample['data_samples'].gt_instances) > 0

    init_default_scope('mmdet')
    dior = dict(full_cfg.datasets[0], type='mmrotate.DIORRDataset', pipeline=[])
    in_mmdet = DATASETS.build(dict(type='RandomSubsetDataset', dataset=dior, fraction=0.34))
    assert isinstance(in_mmdet, RandomSubsetDataset) and len(in_mmdet) == 2  # 6 * 0.34 = 2.04
