"""MutDet's model parts (issue 12): the contrastive alignment loss (eq. 2) against hand-computed
values, its symmetry and its degenerate sizes; the embedding head; the mutual enhancement module
(eq. 1) on a batch whose images hold 3, 0 and 5 objects (shapes, no NaN, padding without effect,
an image without objects, gradients, the attention against torch's own, memory with 4000 features
and 1000 objects); the padding of pseudo-boxes by area with a cap."""
import math

import pytest
import torch
from torch import nn

from ifkd_mm.models.mutdet.contrastive import EmbeddingHead, contrastive_alignment_loss
from ifkd_mm.models.mutdet.enhancement import (KeyMaskedAttention, MutualEnhancementModule,
                                               pad_objects)

torch.set_num_threads(1)

# ---------------------------------------------------------------- eq. 2


def test_identical_orthogonal_pairs_by_hand():
    """z_i = o_i = e_i (inputs scaled, normalised inside): every log-softmax term is
    1/tau - log(e^(1/tau) + M - 1), so L = 4 tau log(1 + (M - 1) e^(-1/tau))."""
    rows = torch.eye(3, 4)
    loss = contrastive_alignment_loss(rows * torch.tensor([[2.0], [0.5], [7.0]]), rows * 3.0)
    assert loss.item() == pytest.approx(4 * 0.2 * math.log(1 + 2 * math.exp(-5.0)), rel=1e-5)
    assert loss.item() == pytest.approx(0.0107087, rel=1e-4)


def test_all_equal_rows_by_hand():
    """Every z the same vector, every o the same vector: uniform softmax, each term -log M,
    L = -(2 tau / M) * 2M * (-log M) = 4 tau log M."""
    torch.manual_seed(0)
    predicted = torch.randn(1, 16).expand(4, 16)
    targets = torch.randn(1, 16).expand(4, 16)
    loss = contrastive_alignment_loss(predicted, targets, tau=0.2)
    assert loss.item() == pytest.approx(0.8 * math.log(4), rel=1e-5)
    assert loss.item() == pytest.approx(1.1090355, rel=1e-5)


def test_two_pairs_by_hand():
    """z = (1, 0), (0, 1); o = (3, 0), (2, 2) -> (1, 0), (1, 1)/sqrt 2; tau = 0.5, s = 1/sqrt 2.
    Z O^T / tau = [[2, 2s], [0, 2s]]. Rows: 2 - log(e^2 + e^2s), 2s - log(1 + e^2s); columns
    (O Z^T rows): 2 - log(e^2 + 1), -log 2. L = -(2 * 0.5 / 2) * sum = 0.7401222."""
    s = 1 / math.sqrt(2)
    terms = (2 - math.log(math.exp(2) + math.exp(2 * s)), 2 * s - math.log(1 + math.exp(2 * s)),
             2 - math.log(math.exp(2) + 1), -math.log(2))
    predicted = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    targets = torch.tensor([[3.0, 0.0], [2.0, 2.0]])
    loss = contrastive_alignment_loss(predicted, targets, tau=0.5)
    assert loss.item() == pytest.approx(-0.5 * sum(terms), rel=1e-6)
    assert loss.item() == pytest.approx(0.7401222, rel=1e-6)


def test_symmetric_in_its_inputs():
    torch.manual_seed(1)
    predicted, targets = torch.randn(6, 8), torch.randn(6, 8)
    forward = contrastive_alignment_loss(predicted, targets)
    assert forward.item() == pytest.approx(contrastive_alignment_loss(targets, predicted).item(),
                                           rel=1e-6)
    assert forward.item() > 0


def test_gradients_reach_both_inputs():
    torch.manual_seed(2)
    predicted = torch.randn(5, 8, requires_grad=True)
    targets = torch.randn(5, 8, requires_grad=True)
    contrastive_alignment_loss(predicted, targets).backward()
    assert predicted.grad.abs().sum() > 0 and targets.grad.abs().sum() > 0


def test_one_pair_is_zero_with_a_gradient_path():
    predicted = torch.randn(1, 8, requires_grad=True)
    targets = torch.randn(1, 8, requires_grad=True)
    loss = contrastive_alignment_loss(predicted, targets)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.isfinite(predicted.grad).all() and torch.isfinite(targets.grad).all()


def test_no_pair_is_zero_connected_to_the_head_parameters():
    """M = 0 (no positive in the batch): a zero whose backward reaches every parameter of the head
    that produced the (empty) predictions, as DDP needs."""
    torch.manual_seed(3)
    head = EmbeddingHead(embed_dims=16, object_dims=8)
    queries = torch.randn(2, 10, 16)
    predicted = head(queries)[torch.zeros(2, 10, dtype=torch.bool)]
    targets = torch.zeros(0, 8, requires_grad=True)
    loss = contrastive_alignment_loss(predicted, targets)
    assert predicted.shape == (0, 8)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    for name, param in head.named_parameters():
        assert param.grad is not None, name
        assert torch.count_nonzero(param.grad) == 0, name


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match='predicted and targets'):
        contrastive_alignment_loss(torch.zeros(3, 8), torch.zeros(2, 8))
    with pytest.raises(ValueError, match='tau'):
        contrastive_alignment_loss(torch.zeros(3, 8), torch.zeros(3, 8), tau=0.0)


def test_embedding_head_is_linear_relu_linear():
    torch.manual_seed(4)
    head = EmbeddingHead(embed_dims=16, object_dims=8)
    features = torch.randn(2, 7, 16)
    first, second = head.layers
    expected = second(torch.relu(first(features)))
    assert (first.in_features, first.out_features, second.out_features) == (16, 16, 8)
    torch.testing.assert_close(head(features), expected)


# ---------------------------------------------------------------- pad_objects


def test_pad_objects_orders_by_area_and_caps():
    embeddings = [torch.arange(5, dtype=torch.float32)[:, None].repeat(1, 4), torch.zeros(0, 4),
                  torch.ones(2, 4)]
    areas_wh = [(1, 2), (3, 4), (2, 3), (6, 2), (1, 1)]  # areas 2, 12, 6, 12, 1
    first_boxes = torch.tensor([[10.0, 10.0, w, h, 0.1] for w, h in areas_wh])
    boxes = [first_boxes, torch.zeros(0, 5), torch.tensor([[0, 0, 1, 1, 0], [0, 0, 2, 2, 0.]])]
    objects, mask, kept = pad_objects(embeddings, boxes, max_objects=3)
    assert [k.tolist() for k in kept] == [[1, 3, 2], [], [1, 0]]
    assert all(k.dtype == torch.int64 for k in kept)
    assert objects.shape == (3, 3, 4)
    assert mask.tolist() == [[False] * 3, [True] * 3, [False, False, True]]
    assert objects[0, :, 0].tolist() == [1.0, 3.0, 2.0]
    assert objects[1].abs().sum() == 0 and objects[2, 2].abs().sum() == 0


def test_pad_objects_without_any_object_keeps_one_padding_slot():
    objects, mask, kept = pad_objects([torch.zeros(0, 8)] * 2, [torch.zeros(0, 5)] * 2)
    assert objects.shape == (2, 1, 8) and mask.all() and [len(k) for k in kept] == [0, 0]


def test_pad_objects_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r'image 0 has 2 boxes but 3 embeddings'):
        pad_objects([torch.zeros(3, 4)], [torch.zeros(2, 5)])
    with pytest.raises(ValueError, match=r'boxes\[0\]'):
        pad_objects([torch.zeros(3, 4)], [torch.zeros(3, 4)])
    with pytest.raises(ValueError, match='max_objects'):
        pad_objects([torch.zeros(3, 4)], [torch.zeros(3, 5)], max_objects=0)


# ---------------------------------------------------------------- eq. 1

SMALL = dict(embed_dims=32, object_dims=24, num_layers=2, num_heads=4, feedforward_channels=64)
COUNTS = (3, 0, 5)  # objects per image
VALID = (20, 20, 16)  # unpadded feature positions per image


def small_module() -> MutualEnhancementModule:
    torch.manual_seed(0)
    module = MutualEnhancementModule(**SMALL)
    module.init_weights()
    return module


def small_batch():
    """Per-image embeddings and boxes, and the padded batch: memory (3, 20, 32) with the last 4
    positions of image 2 padded, objects (3, 5, 24)."""
    generator = torch.Generator().manual_seed(5)
    embeddings = [torch.randn(n, 24, generator=generator) for n in COUNTS]
    boxes = [torch.rand(n, 5, generator=generator) * 50 for n in COUNTS]
    objects, object_mask, kept = pad_objects(embeddings, boxes)
    memory = torch.randn(3, 20, 32, generator=generator)
    memory_mask = torch.arange(20)[None] >= torch.tensor(VALID)[:, None]
    return dict(memory=memory, memory_mask=memory_mask, objects=objects,
                object_mask=object_mask), embeddings, boxes


def test_defaults_follow_the_paper():
    module = MutualEnhancementModule()
    layer = module.layers[0]
    assert len(module.layers) == 3 and isinstance(module.object_proj, nn.Identity)
    assert layer.object_self_attn.num_heads == 8
    assert layer.ffn.layers[0][0].out_features == 2048
    assert isinstance(layer.ffn.layers[0][1], nn.ReLU)
    assert isinstance(MutualEnhancementModule(object_dims=128).object_proj, nn.Linear)


def test_attention_matches_torch_multihead_attention():
    """The SDPA attention with a key padding mask equals nn.MultiheadAttention with the same
    weights (no positional encoding, as eq. 1)."""
    torch.manual_seed(6)
    ours = KeyMaskedAttention(16, 4)
    theirs = nn.MultiheadAttention(16, 4, batch_first=True)
    with torch.no_grad():
        theirs.in_proj_weight.copy_(torch.cat(
            [ours.query_proj.weight, ours.key_proj.weight, ours.value_proj.weight]))
        theirs.in_proj_bias.copy_(
            torch.cat([ours.query_proj.bias, ours.key_proj.bias, ours.value_proj.bias]))
        theirs.out_proj.weight.copy_(ours.out_proj.weight)
        theirs.out_proj.bias.copy_(ours.out_proj.bias)
    query, key = torch.randn(2, 5, 16), torch.randn(2, 7, 16)
    padding = torch.tensor([[False] * 7, [False] * 4 + [True] * 3])
    expected = theirs(query, key, key, key_padding_mask=padding, need_weights=False)[0]
    torch.testing.assert_close(ours(query, key, padding), expected, rtol=1e-5, atol=1e-6)


def test_shapes_and_no_nan_with_an_image_without_objects():
    module = small_module()
    inputs, _, _ = small_batch()
    features, objects = module(**inputs)
    assert features.shape == (3, 20, 32) and objects.shape == (3, 5, 32)
    assert torch.isfinite(features).all() and torch.isfinite(objects).all()
    assert torch.count_nonzero(objects[inputs['object_mask']]) == 0
    assert torch.count_nonzero(objects[~inputs['object_mask']]) > 0


def test_padding_does_not_change_the_real_slots():
    """Each image alone (no padding at all) gives the batched result on its real slots, and
    garbage in the padded slots changes nothing."""
    module = small_module()
    inputs, embeddings, boxes = small_batch()
    features, objects = module(**inputs)
    for i, (count, valid) in enumerate(zip(COUNTS, VALID)):
        alone_objects, alone_mask, _ = pad_objects([embeddings[i]], [boxes[i]])
        alone_features, alone_enhanced = module(inputs['memory'][i:i + 1, :valid], None,
                                                alone_objects, alone_mask)
        torch.testing.assert_close(features[i, :valid], alone_features[0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(objects[i, :count], alone_enhanced[0, :count], rtol=1e-5,
                                   atol=1e-5)
    noisy = dict(inputs)
    noisy['objects'] = inputs['objects'].masked_fill(inputs['object_mask'][..., None], 1e3)
    noisy['memory'] = torch.where(inputs['memory_mask'][..., None],
                                  1e3 * torch.randn_like(inputs['memory']), inputs['memory'])
    noisy_features, noisy_objects = module(**noisy)
    real_positions = ~inputs['memory_mask']
    torch.testing.assert_close(noisy_features[real_positions], features[real_positions])
    torch.testing.assert_close(noisy_objects, objects)


def test_features_of_an_image_without_objects_are_only_normalised():
    """No object: every feature-update attention term is zero, so each layer gives
    F_{i+1} = LN(F_i) on the projected memory LN(Linear(memory))."""
    module = small_module()
    inputs, _, _ = small_batch()
    features, _ = module(**inputs)
    expected = module.memory_norm(module.memory_proj(inputs['memory'][1]))
    for layer in module.layers:
        expected = layer.norms[3](expected)
    torch.testing.assert_close(features[1], expected)


def test_gradients_reach_objects_features_and_every_parameter():
    module = small_module()
    inputs, _, _ = small_batch()
    memory = inputs['memory'].requires_grad_()
    objects = inputs['objects'].requires_grad_()
    features, enhanced = module(**inputs)
    generator = torch.Generator().manual_seed(7)
    weights = (torch.randn(features.shape, generator=generator),
               torch.randn(enhanced.shape, generator=generator))
    ((features * weights[0]).sum() + (enhanced * weights[1]).sum()).backward()
    real = ~inputs['object_mask']
    assert torch.isfinite(objects.grad).all() and torch.isfinite(memory.grad).all()
    assert (objects.grad[real].abs().sum(-1) > 0).all()
    assert torch.count_nonzero(objects.grad[~real]) == 0
    assert (memory.grad[~inputs['memory_mask']].abs().sum(-1) > 0).all()
    for name, param in module.named_parameters():
        assert param.grad is not None and torch.count_nonzero(param.grad) > 0, name


def test_bad_inputs_are_named_by_the_module():
    module = small_module()
    inputs, _, _ = small_batch()
    with pytest.raises(ValueError, match='objects must be'):
        module(inputs['memory'], None, torch.zeros(3, 5, 32), inputs['object_mask'])
    with pytest.raises(ValueError, match='object_mask must be a bool'):
        module(inputs['memory'], None, inputs['objects'], inputs['object_mask'].float())
    with pytest.raises(ValueError, match='memory_mask must be a bool'):
        module(inputs['memory'], inputs['memory_mask'][:, :10], inputs['objects'],
               inputs['object_mask'])


def memory_status_mib(field: str) -> float:
    """A field of /proc/self/status (VmRSS, VmHWM) in MiB."""
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def test_memory_with_4000_features_and_1000_objects_has_no_feature_by_feature_matrix():
    """L = 4000, M = 1000, the paper's sizes: the peak resident memory of the forward stays far
    below what the (heads, L, L) float scores of one image alone need (8 * 4000^2 * 4 B = 488 MiB;
    measured here about 40 MiB), and, under autograd, no operation of a smaller run ever receives
    an (L, L) tensor."""
    torch.manual_seed(8)
    module = MutualEnhancementModule()
    memory, objects = torch.randn(1, 4000, 256), torch.randn(1, 1000, 256)
    object_mask = torch.zeros(1, 1000, dtype=torch.bool)
    with open('/proc/self/clear_refs', 'w') as clear_refs:
        clear_refs.write('5')  # resets the peak (VmHWM) to the current resident size
    before = memory_status_mib('VmRSS')
    with torch.no_grad():
        features, enhanced = module(memory, None, objects, object_mask)
    growth = memory_status_mib('VmHWM') - before
    assert features.shape == (1, 4000, 256) and enhanced.shape == (1, 1000, 256)
    assert growth < 8 * 4000**2 * 4 / 2**20 / 2, f'peak grew by {growth:.0f} MiB'

    num_features = 400
    with torch.autograd.profiler.profile(record_shapes=True) as profile:
        module(memory[:, :num_features].clone().requires_grad_(), None, objects[:, :100],
               object_mask[:, :100])
    shapes = [tuple(shape) for event in profile.function_events for shape in event.input_shapes
              if isinstance(shape, list)]
    assert (1, 8, num_features, 32) in shapes  # the features did reach the attention
    assert not [shape for shape in shapes if shape[-2:] == (num_features, num_features)]
