"""MutDet box embeddings and pseudo classes (issue 11): the rotated crop's angle convention against
sampling points computed by hand and a drawn bar, the frozen-backbone embedder (shapes, batching,
enlargement, resizing, weights from a checkpoint, bad input), the re-chunking that bounds memory,
the streaming PCA against a full SVD, k-means on separated blobs, and the saved fit."""
import math

import cv2
import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmrotate.structures.bbox import rbox2qbox
from scipy.linalg import subspace_angles
from sklearn.metrics import adjusted_rand_score

from ifkd_mm.pretraining.mutdet.clustering import (PseudoClasses, TooFewRowsError,
                                                   fit_pseudo_classes, rechunk)
from ifkd_mm.pretraining.mutdet.embeddings import BoxEmbedder, crop_rotated_patches

torch.set_num_threads(1)
R18 = dict(type='mmdet.ResNet', depth=18, out_indices=(3, ), init_cfg=None)


def small_embedder(**kwargs) -> BoxEmbedder:
    torch.manual_seed(0)
    settings = dict(backbone=R18, crop_size=32, image_size=None, batch_size=64)
    settings.update(kwargs)
    return BoxEmbedder(**settings)


def random_image(height: int = 64, width: int = 80, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


BOXES = np.array([[30, 25, 20, 10, 0.3], [50, 40, 12, 12, -1.2], [20, 45, 30, 6, 1.0],
                  [60, 20, 8, 16, -0.4], [40, 32, 40, 30, 0.0]], dtype=np.float32)


# ---------------------------------------------------------------- crops: the angle convention


@pytest.mark.parametrize('degrees', [-80, -30, 0, 30, 60])
def test_crop_samples_the_le90_box_on_a_linear_image(degrees):
    """On an image whose two channels are the pixel's column and row, bilinear sampling is exact,
    so every crop pixel must hold the centre of its bin in the enlarged box, computed here from
    mmrotate's le90 axes: width along (cos t, sin t), height along (-sin t, cos t)."""
    height, width, size, enlarge = 120, 140, 6, 1.5
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    image = torch.from_numpy(np.stack([cols, rows]))[None]
    cx, cy, w, h, theta = 70.0, 60.0, 40.0, 24.0, math.radians(degrees)
    crop = crop_rotated_patches(image, torch.tensor([[cx, cy, w, h, theta]]), size, enlarge)[0]

    big_w, big_h = w * enlarge, h * enlarge
    expected = np.zeros((2, size, size))
    for i in range(size):
        for j in range(size):
            u = -big_w / 2 + (j + 0.5) * big_w / size
            v = -big_h / 2 + (i + 0.5) * big_h / size
            x = cx + u * math.cos(theta) - v * math.sin(theta)
            y = cy + u * math.sin(theta) + v * math.cos(theta)
            expected[:, i, j] = x - 0.5, y - 0.5  # pixel (row, col) centre: (col + .5, row + .5)
    np.testing.assert_allclose(crop.numpy(), expected, atol=1e-3)


def draw_bar(box: list, height: int = 240, width: int = 240) -> np.ndarray:
    """A white filled rotated box on black, its corners from mmrotate's ``rbox2qbox``."""
    corners = rbox2qbox(torch.tensor([box], dtype=torch.float32)).reshape(4, 2).numpy()
    image = np.zeros((height, width), dtype=np.uint8)
    cv2.fillPoly(image, [np.round(corners - 0.5).astype(np.int32)], 255)
    return image


def test_turned_bar_crops_horizontal():
    """A bar at +30 degrees cropped with its own le90 box (enlarged 1.5x) fills the middle rows of
    the crop from side to side at the middle columns, and leaves the top and bottom rows black; with
    the mirrored angle (the other rotation sense) the same crop is not a horizontal band."""
    box = [120.0, 120.0, 150.0, 30.0, math.radians(30)]
    image = torch.from_numpy(draw_bar(box)).float()[None, None]
    size = 48  # the bar covers the middle 32 rows and columns
    crop = crop_rotated_patches(image, torch.tensor([box]), size, enlarge=1.5)[0, 0].numpy()
    assert crop[11:37, 11:37].min() > 200
    assert crop[:5].max() < 30 and crop[-5:].max() < 30
    assert crop[:, :5].max() < 30 and crop[:, -5:].max() < 30

    mirrored = [*box[:4], -box[4]]
    wrong = crop_rotated_patches(image, torch.tensor([mirrored]), size, 1.5)[0, 0].numpy()
    assert wrong[11:37, 11:37].min() < 30


# ---------------------------------------------------------------- the embedder


def test_embedder_shapes_dtype_empty_and_frozen():
    embedder = small_embedder()
    embeddings = embedder.embed(random_image(), BOXES)
    assert embeddings.shape == (5, 512) and embeddings.dtype == np.float16
    assert np.isfinite(embeddings).all() and embedder.dim == 512
    assert np.abs(embeddings[0] - embeddings[1]).max() > 0
    empty = embedder.embed(random_image(), np.zeros((0, 5), dtype=np.float32))
    assert empty.shape == (0, 512) and empty.dtype == np.float16
    assert not embedder.backbone.training
    assert not any(p.requires_grad for p in embedder.backbone.parameters())


def test_embedding_is_the_pooled_backbone_output_of_the_normalised_crop():
    """Checked against the crop of an image normalised here by hand, through the same backbone."""
    mean, std = (100.0, 110.0, 120.0), (50.0, 60.0, 70.0)
    embedder = small_embedder(mean=mean, std=std, enlarge=1.5)
    image = random_image()
    normalised = (image.astype(np.float32) - np.array(mean, np.float32)) / np.array(std, np.float32)
    tensor = torch.from_numpy(normalised).permute(2, 0, 1)[None].contiguous()
    crops = crop_rotated_patches(tensor, torch.from_numpy(BOXES), 32, enlarge=1.5)
    with torch.no_grad():
        expected = embedder.backbone(crops)[-1].mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(embedder.embed(image, BOXES).astype(np.float32), expected,
                               rtol=2e-3, atol=2e-3)


def test_batches_keep_boxes_apart():
    """Batches of 2 give what one batch gives (to float16 rounding: the convolutions may sum in
    another order), and each row depends on its own box only."""
    image = random_image()
    one_batch = small_embedder().embed(image, BOXES)
    np.testing.assert_allclose(small_embedder(batch_size=2).embed(image, BOXES).astype(np.float32),
                               one_batch.astype(np.float32), rtol=2e-3, atol=2e-3)
    order = np.array([3, 0, 4, 1, 2])
    np.testing.assert_allclose(small_embedder().embed(image, BOXES[order]).astype(np.float32),
                               one_batch[order].astype(np.float32), rtol=2e-3, atol=2e-3)


def test_enlarge_widens_the_crop():
    """Enlarging by 2 is cropping the box with doubled sides; it differs from no enlargement."""
    image = random_image()
    doubled = BOXES.copy()
    doubled[:, 2:4] *= 2
    enlarged = small_embedder(enlarge=2.0).embed(image, BOXES)
    np.testing.assert_array_equal(enlarged, small_embedder(enlarge=1.0).embed(image, doubled))
    plain = small_embedder(enlarge=1.0).embed(image, BOXES)
    assert np.abs(enlarged.astype(np.float32) - plain.astype(np.float32)).max() > 1e-2


@pytest.mark.parametrize('height,width', [(40, 40), (30, 40)])
def test_resize_scales_the_boxes_with_the_image(height, width):
    """``image_size`` = resizing the image (longer side, bilinear) and scaling its boxes by hand."""
    image = random_image(height, width)
    boxes = np.array([[20, 15, 10, 6, 0.5], [12, 10, 8, 8, -0.7]], dtype=np.float32)
    resized = cv2.resize(image, (width * 2, height * 2), interpolation=cv2.INTER_LINEAR)
    scaled = boxes.copy()
    scaled[:, :4] *= 2
    np.testing.assert_array_equal(
        small_embedder(image_size=80).embed(image, boxes),
        small_embedder(image_size=None).embed(resized, scaled))


def test_bad_input_is_named():
    embedder = small_embedder()
    with pytest.raises(ValueError, match=r'RGB uint8.*float32'):
        embedder.embed(random_image().astype(np.float32), BOXES)
    with pytest.raises(ValueError, match=r'\(H, W, 3\).*\(64, 80\)'):
        embedder.embed(random_image()[..., 0], BOXES)
    with pytest.raises(ValueError, match=r'\(N, 5\).*\(5, 4\)'):
        embedder.embed(random_image(), BOXES[:, :4])
    with pytest.raises(ValueError, match=r'boxes \[1\] have non-finite'):
        embedder.embed(random_image(), np.where(np.arange(5)[:, None] == 1, np.nan, BOXES))
    with pytest.raises(FileNotFoundError, match='no_such_resnet.pth'):
        small_embedder(init_checkpoint='/nonexistent/no_such_resnet.pth')


def test_init_checkpoint_loads_every_backbone_weight(tmp_path):
    """A detector-style checkpoint (``backbone.`` prefix, extra head weights) fills the backbone;
    one of another architecture is refused, naming the file and the missing weights."""
    torch.manual_seed(1)
    source = MODELS.build(R18)
    source.init_weights()
    for buffer in source.buffers():
        buffer.add_(torch.rand_like(buffer.float()).to(buffer.dtype))
    state = {f'backbone.{key}': value for key, value in source.state_dict().items()}
    state['bbox_head.fc.weight'] = torch.zeros(3, 3)
    path = tmp_path / 'r18_detector.pth'
    torch.save(dict(state_dict=state, meta=dict(epoch=1)), path)

    embedder = small_embedder(init_checkpoint=str(path))
    for key, value in source.state_dict().items():
        assert torch.equal(embedder.backbone.state_dict()[key], value), key

    r34 = dict(R18, depth=34)
    with pytest.raises(ValueError, match=r'r18_detector\.pth.*missing weights.*layer'):
        small_embedder(backbone=r34, init_checkpoint=str(path))


# ---------------------------------------------------------------- re-chunking (bounded memory)


@pytest.mark.parametrize('sizes', [
    [16, 3, 16, 15],  # a remainder of 2 rows: shared with the last full chunk
    [5, 0, 17, 3, 40, 1, 2, 9],  # a remainder of 13 rows: a chunk of its own
    [16, 16, 16],  # an exact multiple
    [70],  # one array larger than several chunks
    [7, 0, 4],  # fewer rows than one chunk
])
def test_rechunk_bounds_chunk_sizes_and_keeps_the_rows(sizes):
    batch_size, min_rows = 16, 6
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(n, 3)).astype(np.float32) for n in sizes]
    chunks = list(rechunk(iter(arrays), batch_size, min_rows))
    assert all(min_rows <= len(chunk) <= batch_size for chunk in chunks), \
        [len(chunk) for chunk in chunks]
    np.testing.assert_array_equal(np.concatenate(chunks), np.concatenate(arrays))


def test_rechunk_refuses_too_few_rows_and_a_small_batch_size():
    with pytest.raises(TooFewRowsError, match='5 rows in all, fewer than the 6 needed'):
        list(rechunk([np.zeros((2, 3)), np.zeros((3, 3))], 16, 6))
    with pytest.raises(ValueError, match='at least twice'):
        list(rechunk([np.zeros((20, 3))], 10, 6))


# ---------------------------------------------------------------- PCA and k-means


def streamed(data: np.ndarray, seed: int = 0):
    """``batches`` for the fitter: the rows of ``data`` in arrays of random sizes (per-image)."""
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, len(data)), size=len(data) // 20, replace=False))

    def batches():
        return iter(np.split(data, cuts))

    return batches


def test_streaming_pca_spans_the_svd_subspace():
    rng = np.random.default_rng(0)
    num, width, dim = 3000, 40, 8
    basis = np.linalg.qr(rng.normal(size=(width, width)))[0]
    spectrum = np.linspace(10, 3, dim)
    data = rng.normal(size=(num, dim)) * spectrum @ basis[:, :dim].T
    data += 0.1 * rng.normal(size=(num, width)) + rng.normal(size=width) * 5
    data = data.astype(np.float32)

    classes = fit_pseudo_classes(streamed(data), dim=dim, num_clusters=4, batch_size=256,
                                 kmeans_passes=1)
    centred = data.astype(np.float64) - data.mean(axis=0)
    top = np.linalg.svd(centred, full_matrices=False)[2][:dim]
    assert np.degrees(subspace_angles(classes.components.T, top.T)).max() < 0.5
    assert np.degrees(subspace_angles(basis[:, dim:2 * dim], top.T)).min() > 45  # not trivial
    np.testing.assert_allclose(classes.mean, data.mean(axis=0), atol=1e-3)
    assert classes.settings['num_vectors'] == num


def sphere_blobs(num_blobs: int = 6, per_blob: int = 100, width: int = 32, seed: int = 0):
    """Shuffled points around ``num_blobs`` random centres, far apart, and their blob ids."""
    rng = np.random.default_rng(seed)
    centres = 10 * rng.normal(size=(num_blobs, width))
    labels = rng.permutation(np.repeat(np.arange(num_blobs), per_blob))
    points = centres[labels] + 0.2 * rng.normal(size=(len(labels), width))
    return points.astype(np.float32), labels


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_kmeans_recovers_blobs_and_is_deterministic(seed):
    points, labels = sphere_blobs()
    fit = dict(dim=8, num_clusters=6, seed=seed, batch_size=128, kmeans_passes=3)
    classes = fit_pseudo_classes(streamed(points), **fit)
    cluster_ids, embeddings = classes.assign(points)
    assert adjusted_rand_score(labels, cluster_ids) == 1.0
    assert cluster_ids.dtype == np.int64 and embeddings.dtype == np.float16
    assert embeddings.shape == (len(points), 8)
    np.testing.assert_allclose(np.linalg.norm(embeddings.astype(np.float32), axis=1), 1, atol=2e-3)

    again = fit_pseudo_classes(streamed(points), **fit)
    np.testing.assert_array_equal(again.centres, classes.centres)
    np.testing.assert_array_equal(again.components, classes.components)


def test_each_pass_streams_the_batches_again():
    points, _ = sphere_blobs()
    calls = []

    def batches():
        calls.append(1)
        return (points[start:start + 7] for start in range(0, len(points), 7))

    fit_pseudo_classes(batches, dim=8, num_clusters=6, batch_size=128, kmeans_passes=4)
    assert len(calls) == 5  # the PCA pass, then 4 k-means passes


def test_save_load_round_trip(tmp_path):
    points, _ = sphere_blobs()
    classes = fit_pseudo_classes(streamed(points), dim=8, num_clusters=6, batch_size=128)
    path = str(tmp_path / 'fit' / 'pseudo_classes.npz')
    classes.save(path)
    loaded = PseudoClasses.load(path, dim=8, input_dim=32)
    for field in ('mean', 'components', 'centres'):
        np.testing.assert_array_equal(getattr(loaded, field), getattr(classes, field))
    assert loaded.settings == classes.settings and loaded.settings['seed'] == 0
    for ours, theirs in zip(loaded.assign(points), classes.assign(points)):
        np.testing.assert_array_equal(ours, theirs)
    assert [p.name for p in (tmp_path / 'fit').iterdir()] == ['pseudo_classes.npz']


def test_pseudo_class_errors_name_the_file_and_the_widths(tmp_path):
    points, _ = sphere_blobs()
    classes = fit_pseudo_classes(streamed(points), dim=8, num_clusters=6, batch_size=128)
    path = str(tmp_path / 'pc.npz')
    classes.save(path)
    with pytest.raises(ValueError, match=r'pc\.npz has dim 8, expected 256'):
        PseudoClasses.load(path, dim=256)
    with pytest.raises(ValueError, match=r'pc\.npz has input_dim 32, expected 2048'):
        PseudoClasses.load(path, input_dim=2048)
    with pytest.raises(ValueError, match=r'\(600, 16\).*fitted on 32-d'):
        classes.assign(points[:, :16])
    with pytest.raises(FileNotFoundError, match='missing.npz'):
        PseudoClasses.load(str(tmp_path / 'missing.npz'))
    (tmp_path / 'text.npz').write_text('not a zip')
    with pytest.raises(ValueError, match=r'text\.npz is not a valid pseudo-class file'):
        PseudoClasses.load(str(tmp_path / 'text.npz'))
    np.savez(tmp_path / 'partial.npz', mean=classes.mean)
    with pytest.raises(ValueError, match=r"partial\.npz.*missing fields \['components'"):
        PseudoClasses.load(str(tmp_path / 'partial.npz'))


def test_fit_refuses_too_few_or_inconsistent_embeddings():
    points, _ = sphere_blobs()
    with pytest.raises(ValueError, match=r'found 100 embeddings, need at least 256'):
        fit_pseudo_classes(lambda: iter([points[:60], points[60:100]]), batch_size=4096)
    with pytest.raises(ValueError, match='dim=64 exceeds the embedding width 32'):
        fit_pseudo_classes(streamed(points), dim=64, num_clusters=6, batch_size=128)
    with pytest.raises(ValueError, match='batch 1 has width 16, earlier batches 32'):
        fit_pseudo_classes(lambda: iter([points[:300], points[300:, :16]]), dim=8,
                           num_clusters=6, batch_size=128)
    shrinking = iter([points, points[:400]] + [points[:400]] * 5)
    with pytest.raises(ValueError, match='600 embeddings for the PCA but 400 in k-means pass 1'):
        fit_pseudo_classes(lambda: iter([next(shrinking)]), dim=8, num_clusters=6,
                           batch_size=128)
