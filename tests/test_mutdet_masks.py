"""MutDet pseudo-label masks and boxes: real SAM / MobileSAM architectures with random weights."""
import math

import numpy as np
import pytest
import torch

from ifkd_mm.pretraining.mutdet.boxes import mask_to_rotated_box, masks_to_rotated_boxes
from ifkd_mm.pretraining.mutdet.masks import MASK_PRESETS, MaskGenerator, build_sam


def rasterise(cx, cy, w, h, theta, shape=(128, 128)) -> np.ndarray:
    """The pixels whose centres lie in the rectangle; ``theta`` turns the w side from x to y."""
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]] + 0.5
    dx, dy = cols - cx, rows - cy
    along_w = dx * math.cos(theta) + dy * math.sin(theta)
    along_h = -dx * math.sin(theta) + dy * math.cos(theta)
    return (np.abs(along_w) <= w / 2) & (np.abs(along_h) <= h / 2)


def block(shape, rows, cols) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[rows[0]:rows[1], cols[0]:cols[1]] = True
    return mask


@pytest.mark.parametrize('degrees', range(-85, 90, 5))
@pytest.mark.parametrize('size', [(48, 20), (64, 14)])
def test_rasterised_rectangle_gives_back_its_box(degrees, size):
    rng = np.random.default_rng(degrees + 100)
    cx, cy = 64 + rng.uniform(-1, 1), 62 + rng.uniform(-1, 1)
    box = mask_to_rotated_box(rasterise(cx, cy, *size, math.radians(degrees)))
    assert box.dtype == np.float32 and box.shape == (5, )
    assert -math.pi / 2 <= box[4] < math.pi / 2
    assert abs(math.degrees(box[4]) - degrees) <= 1.5
    assert abs(box[2] - size[0]) <= 2 and abs(box[3] - size[1]) <= 2
    assert abs(box[0] - cx) <= 0.5 and abs(box[1] - cy) <= 0.5


def test_axis_aligned_masks_follow_mmrotate_le90():
    # Rows 10..19, columns 5..44: pixel centres 5.5..44.5 and 10.5..19.5.
    wide = mask_to_rotated_box(block((50, 60), (10, 20), (5, 45)))
    np.testing.assert_allclose(wide, [25, 15, 39, 9, 0], atol=1e-4)
    # A tall mask: the long side is w, turned to the y axis (theta = -pi/2 in le90).
    tall = mask_to_rotated_box(block((50, 60), (10, 45), (30, 40)))
    np.testing.assert_allclose(tall, [35, 27.5, 34, 9, -math.pi / 2], atol=1e-4)


def test_largest_contour_is_the_largest_by_area():
    mask = block((120, 120), (10, 30), (10, 30))  # 20 x 20 square: ~76 contour points
    mask[100:102, 5:115] = True  # a 2 px line: more contour points, less area
    np.testing.assert_allclose(mask_to_rotated_box(mask), [20, 20, 19, 19, 0], atol=1e-4)


def test_empty_tiny_and_degenerate_masks_are_dropped_and_counted():
    shape = (50, 60)
    good = block(shape, (10, 20), (5, 45))
    point = block(shape, (3, 4), (3, 4))
    line = block(shape, (5, 6), (5, 40))
    tiny = block(shape, (5, 8), (5, 8))  # sides 2 x 2 between pixel centres
    edge = block(shape, (30, 35), (40, 45))  # sides 4 x 4: area exactly 16
    masks = [good, np.zeros(shape, bool), point, line, tiny, edge]

    boxes, kept, dropped = masks_to_rotated_boxes(masks)
    assert dropped == {'empty': 1, 'degenerate': 2, 'tiny': 1}
    assert kept.dtype == np.int64 and kept.tolist() == [0, 5]
    assert boxes.dtype == np.float32 and boxes.shape == (2, 5)
    np.testing.assert_allclose(boxes, [mask_to_rotated_box(good), mask_to_rotated_box(edge)])

    _, kept, dropped = masks_to_rotated_boxes(masks, min_area=17)
    assert kept.tolist() == [0] and dropped == {'empty': 1, 'degenerate': 2, 'tiny': 2}
    _, kept, dropped = masks_to_rotated_boxes(masks, min_area=0, min_side=0)
    assert kept.tolist() == [0, 2, 3, 4, 5] and dropped == {'empty': 1, 'degenerate': 0, 'tiny': 0}

    boxes, kept, dropped = masks_to_rotated_boxes([])
    assert boxes.shape == (0, 5) and kept.shape == (0, ) and sum(dropped.values()) == 0
    assert mask_to_rotated_box(np.zeros(shape, bool)) is None
    with pytest.raises(ValueError, match=r'2-D .* shape \(50, 60, 3\)'):
        mask_to_rotated_box(np.zeros(shape + (3, ), bool))


def test_mask_generator_settings_and_bad_input():
    paper = MaskGenerator(pred_iou_thresh=0.5)
    assert paper.settings['points_per_side'] == 64 and paper.settings['box_nms_thresh'] == 0.8
    assert paper.settings['pred_iou_thresh'] == 0.5
    assert paper.settings['stability_score_thresh'] == 0.95  # the library's default
    assert paper.settings['variant'] == 'vit_t' and 'output_mode' not in paper.settings
    public = MaskGenerator('vit_b', preset='public')
    assert {k: public.settings[k] for k in MASK_PRESETS['public']} == MASK_PRESETS['public']

    with pytest.raises(ValueError, match='vit_s'):
        MaskGenerator('vit_s')
    with pytest.raises(ValueError, match='fast'):
        MaskGenerator(preset='fast')
    with pytest.raises(ValueError, match='pred_iou'):
        MaskGenerator(pred_iou=0.5)
    with pytest.raises(ValueError, match=r'float32 array of shape \(8, 8, 3\)'):
        paper.generate(np.zeros((8, 8, 3), np.float32))


def test_random_mobile_sam_returns_masks():
    torch.manual_seed(0)
    generator = MaskGenerator('vit_t', points_per_side=2, pred_iou_thresh=0,
                              stability_score_thresh=0)
    image = np.full((64, 80, 3), 40, np.uint8)
    image[12:40, 20:64] = (220, 180, 60)
    masks = generator.generate(image)
    assert len(masks) >= 1
    assert all(mask.dtype == bool and mask.shape == (64, 80) for mask in masks)
    assert any(mask.any() for mask in masks)
    boxes, kept, dropped = masks_to_rotated_boxes(masks, min_area=0, min_side=0)
    assert len(kept) + sum(dropped.values()) == len(masks) and boxes.shape == (len(kept), 5)


@pytest.fixture(scope='module')
def vit_t_checkpoint(tmp_path_factory):
    """A randomly initialised MobileSAM saved as its official checkpoint is: a state dict."""
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp('sam') / 'mobile_sam.pt'
    torch.save(build_sam('vit_t', None).state_dict(), path)
    return str(path)


def test_checkpoint_is_loaded(vit_t_checkpoint):
    saved = torch.load(vit_t_checkpoint, weights_only=True)
    model = build_sam('vit_t', vit_t_checkpoint)
    assert not model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key]), key


def test_missing_checkpoint_names_the_file(tmp_path):
    missing = str(tmp_path / 'sam_vit_h_4b8939.pth')
    with pytest.raises(FileNotFoundError, match='sam_vit_h_4b8939.pth'):
        build_sam('vit_h', missing)
    with pytest.raises(FileNotFoundError, match='sam_vit_h_4b8939.pth'):
        MaskGenerator('vit_h', missing)


def test_checkpoint_of_another_variant_names_the_file_and_variant(tmp_path, vit_t_checkpoint):
    vit_b_checkpoint = tmp_path / 'sam_vit_b_01ec64.pth'
    torch.save(build_sam('vit_b', None).state_dict(), vit_b_checkpoint)
    try:
        with pytest.raises(ValueError, match=r'sam_vit_b_01ec64\.pth holds vit_b .* not vit_t'):
            build_sam('vit_t', str(vit_b_checkpoint))
    finally:
        vit_b_checkpoint.unlink()
    # The model is built lazily: the error comes with the first image.
    generator = MaskGenerator('vit_b', vit_t_checkpoint)
    with pytest.raises(ValueError, match=r'mobile_sam\.pt holds vit_t .* not vit_b'):
        generator.generate(np.zeros((8, 8, 3), np.uint8))


def test_damaged_checkpoint_names_the_file_and_keys(tmp_path, vit_t_checkpoint):
    state_dict = torch.load(vit_t_checkpoint, weights_only=True)
    del state_dict['mask_decoder.iou_token.weight']
    state_dict['prompt_encoder.not_a_point_embed'] = torch.zeros(1)
    state_dict['mask_decoder.mask_tokens.weight'] = torch.zeros(3, 256)
    damaged = tmp_path / 'damaged.pt'
    torch.save(state_dict, damaged)
    with pytest.raises(ValueError) as error:
        build_sam('vit_t', str(damaged))
    message = str(error.value)
    assert 'damaged.pt' in message
    assert '1 missing keys (e.g. mask_decoder.iou_token.weight)' in message
    assert '1 unexpected keys (e.g. prompt_encoder.not_a_point_embed)' in message
    assert 'mask_decoder.mask_tokens.weight (3, 256) instead of (4, 256)' in message

    text = tmp_path / 'notes.pth'
    text.write_text('not a checkpoint')
    with pytest.raises(ValueError, match='notes.pth'):
        build_sam('vit_t', str(text))
