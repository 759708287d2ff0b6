"""MutDet pseudo-labels: atomic byte-stable files, a resumable run that survives being killed,
errors that name the file, the dataset pipeline keeping embeddings with their boxes, pictures, and
a randomly initialised MobileSAM through the real command."""
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope

from .conftest import REPO, run

TOOL = osp.join(REPO, 'tools/mutdet/make_pseudo_labels.py')
SMALL_EMBEDDER = """
embedder = dict(type='BoxEmbedder',
                backbone=dict(type='mmdet.ResNet', depth=18, out_indices=(3, ), init_cfg=None),
                crop_size=32, enlarge=1.5, image_size=None, batch_size=16, device='cpu')
"""


def make_pseudo_labels(argv: list) -> dict:
    """tools/mutdet/make_pseudo_labels.py in this process."""
    from tools.mutdet.make_pseudo_labels import main

    return main(argv)


def write_config(tmp_path, mask_generator: str, dim: int = 8, clusters: int = 4) -> str:
    path = tmp_path / 'pseudo_labels.py'
    path.write_text(f"""
mask_generator = {mask_generator}
{SMALL_EMBEDDER}
box_filter = dict(min_area=16, min_side=2)
clustering = dict(dim={dim}, num_clusters={clusters}, batch_size=64)
""")
    return str(path)


@pytest.fixture(scope='module')
def scenes(tmp_path_factory) -> str:
    """16 synthetic DOTA-layout images of 192 px (objects on a plain-ish background)."""
    from ifkd_mm.datasets.synthetic import make_dota

    root = str(tmp_path_factory.mktemp('scenes'))
    make_dota(root, num_train=16, num_val=1, img_size=192, seed=3)
    return osp.join(root, 'DOTA', 'train', 'images')


def test_npz_files_are_atomic_byte_stable_and_readable(tmp_path):
    from ifkd_mm.pretraining.mutdet.storage import read_fields, read_npz, write_npz

    arrays = dict(boxes=np.arange(10, dtype=np.float32).reshape(2, 5), name=np.array('P0001.png'))
    write_npz(str(tmp_path / 'a.npz'), **arrays)
    time.sleep(1.1)  # a zip entry's default timestamp would change
    write_npz(str(tmp_path / 'b.npz'), **arrays)
    assert (tmp_path / 'a.npz').read_bytes() == (tmp_path / 'b.npz').read_bytes()
    assert sorted(os.listdir(tmp_path)) == ['a.npz', 'b.npz']  # no temporary file left
    loaded = read_npz(str(tmp_path / 'a.npz'))
    assert np.array_equal(loaded['boxes'], arrays['boxes']) and str(loaded['name']) == 'P0001.png'
    with pytest.raises(ValueError, match=r'b\.npz lacks the field\(s\) \[\'labels\'\]'):
        read_fields(str(tmp_path / 'b.npz'), ('boxes', 'labels'))
    (tmp_path / 'broken.npz').write_bytes(b'not a zip')
    with pytest.raises(ValueError, match=r'broken\.npz is not a readable pseudo-label file'):
        read_npz(str(tmp_path / 'broken.npz'))


def test_component_masks_find_the_objects_of_a_plain_image():
    from ifkd_mm.pretraining.mutdet.pseudo_labels import ComponentMaskGenerator

    image = np.full((60, 80, 3), 100, dtype=np.uint8)
    image[10:20, 5:30] = 250
    image[40:55, 60:70] = 0
    masks = ComponentMaskGenerator(threshold=30).generate(image)
    areas = sorted(int(m.sum()) for m in masks)
    assert areas == [150, 250]


def killed_then_resumed(config: str, images: str, out: str, kill_after: int) -> tuple:
    """Start the tool, SIGKILL it once ``kill_after`` images are extracted, run it again."""
    process = subprocess.Popen([sys.executable, TOOL, config, '--images', images, '--out', out],
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    raw = osp.join(out, 'raw')
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        done = [f for f in os.listdir(raw) if f.endswith('.npz')] if osp.isdir(raw) else []
        if len(done) >= kill_after:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    process.wait()
    assert process.returncode == -signal.SIGKILL, 'the run finished before it could be killed'
    finished = len([f for f in os.listdir(raw) if f.endswith('.npz')])
    log = run([sys.executable, TOOL, config, '--images', images, '--out', out])
    return finished, log


def test_a_killed_run_resumes_to_the_bytes_of_an_uninterrupted_one(scenes, tmp_path, capsys):
    config = write_config(tmp_path, "dict(type='ComponentMaskGenerator', threshold=40)")
    whole = str(tmp_path / 'whole')
    make_pseudo_labels([config, '--images', scenes, '--out', whole])
    log = capsys.readouterr().out
    assert 'extract: 16 images processed' in log and '0 finished images skipped' in log
    finished, log = killed_then_resumed(config, scenes, str(tmp_path / 'resumed'), kill_after=3)
    assert 3 <= finished < 16
    assert f'extract: {16 - finished} images processed' in log
    assert f'{finished} finished images skipped' in log
    for folder in ('raw', 'labels'):
        names = sorted(f for f in os.listdir(osp.join(whole, folder)) if f.endswith('.npz'))
        assert len(names) == 16
        for name in names:
            a = open(osp.join(whole, folder, name), 'rb').read()
            b = open(osp.join(tmp_path, 'resumed', folder, name), 'rb').read()
            assert a == b, f'{folder}/{name} differs'
    assert open(osp.join(whole, 'pseudo_classes.npz'), 'rb').read() == \
        open(osp.join(tmp_path, 'resumed', 'pseudo_classes.npz'), 'rb').read()
    summary = json.load(open(osp.join(whole, 'summary.json')))
    assert summary['images'] == 16 and summary['boxes'] > 16
    labels = np.load(osp.join(whole, 'labels', 'P0000.npz'))
    assert labels['embeddings'].shape == (len(labels['boxes']), 8)
    assert labels['labels'].min() >= 0 and labels['labels'].max() < 4


def test_shards_split_the_images_and_fit_waits_for_all_of_them(scenes, tmp_path, capsys):
    config = write_config(tmp_path, "dict(type='ComponentMaskGenerator', threshold=40)")
    out = str(tmp_path / 'out')
    make_pseudo_labels([config, '--images', scenes, '--out', out, '--stage', 'extract',
                        '--shard', '1/3'])
    assert 'extract: 5 images processed' in capsys.readouterr().out  # images 1, 4, 7, 10, 13
    assert sorted(os.listdir(osp.join(out, 'raw'))) == [f'P{i:04d}.npz' for i in range(1, 16, 3)]
    with pytest.raises(RuntimeError, match='11 of 16 images are not extracted yet'):
        make_pseudo_labels([config, '--images', scenes, '--out', out, '--stage', 'fit'])
    with pytest.raises(SystemExit):
        make_pseudo_labels([config, '--images', scenes, '--out', out, '--shard', '1/3'])
    assert '--stage all runs one shard' in capsys.readouterr().err


def test_bad_input_names_the_file(tmp_path):
    from ifkd_mm.pretraining.mutdet.pseudo_labels import list_images, read_rgb

    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='no images .* in .*empty'):
        list_images(str(tmp_path / 'empty'))
    with pytest.raises(FileNotFoundError, match='nowhere does not exist'):
        list_images(str(tmp_path / 'nowhere'))
    (tmp_path / 'broken.png').write_bytes(b'\x89PNG truncated')
    with pytest.raises(ValueError, match=r'cannot read image .*broken\.png'):
        read_rgb(str(tmp_path / 'broken.png'))


def write_labelled_image(root, name: str, boxes: np.ndarray, shape=(128, 128)) -> None:
    """An image and a pseudo-label file whose embedding i is [i, -i, i, -i] (its box's index)."""
    from ifkd_mm.pretraining.mutdet.storage import write_npz

    os.makedirs(root / 'images', exist_ok=True)
    cv2.imwrite(str(root / 'images' / f'{name}.png'), np.zeros(shape + (3, ), np.uint8))
    index = np.arange(len(boxes), dtype=np.float16)
    write_npz(str(root / 'labels' / f'{name}.npz'), boxes=boxes.astype(np.float32),
              labels=(np.arange(len(boxes)) * 7 % 5).astype(np.int64),
              embeddings=np.stack([index, -index, index, -index], 1),
              image_name=np.array(f'{name}.png'), image_shape=np.array(shape))


def pseudo_label_dataset(root, pipeline_middle: list, **kwargs):
    from mmrotate.registry import DATASETS

    import ifkd_mm  # noqa: F401

    init_default_scope('mmrotate')
    pipeline = [dict(type='mmdet.LoadImageFromFile'), dict(type='LoadMutDetPseudoLabels'),
                *pipeline_middle, dict(type='ResolveMutDetPseudoLabels'),
                dict(type='PackMutDetInputs')]
    return DATASETS.build(dict(type='MutDetPseudoLabelDataset', data_root=str(root),
                               ann_file='labels/', data_prefix=dict(img_path='images/'),
                               num_clusters=5, pipeline=pipeline, **kwargs))


def test_embeddings_stay_with_their_boxes_through_flip_resize_and_crop(tmp_path):
    rng = np.random.default_rng(0)
    boxes = np.concatenate([rng.uniform(8, 120, (12, 2)), rng.uniform(4, 20, (12, 2)),
                            rng.uniform(-1.5, 1.5, (12, 1))], 1)
    write_labelled_image(tmp_path, 'P0000', boxes)
    torch.manual_seed(0)
    dataset = pseudo_label_dataset(tmp_path, [
        dict(type='mmdet.Resize', scale=(64, 64), keep_ratio=True),
        dict(type='mmdet.RandomFlip', prob=1.0, direction='horizontal'),
        dict(type='mmdet.RandomCrop', crop_size=(40, 40), allow_negative_crop=True)])
    sample = dataset[0]['data_samples']
    instances = sample.gt_instances
    index = instances.embeddings[:, 0].round().long()
    assert torch.equal(instances.embeddings[:, 1], -instances.embeddings[:, 0])
    assert 0 < len(index) < 12  # the crop dropped some boxes
    assert torch.equal(instances.labels, torch.from_numpy(index.numpy() * 7 % 5))
    # resized by 0.5 then flipped: x -> 64 - x / 2, y -> y / 2, sizes halved, angle negated
    expected = torch.from_numpy(boxes[index.numpy()]).float()
    expected = torch.stack([64 - expected[:, 0] / 2, expected[:, 1] / 2, expected[:, 2] / 2,
                            expected[:, 3] / 2, -expected[:, 4]], 1)
    got = instances.bboxes.tensor
    offset = expected[:, :2] - got[:, :2]  # one crop offset for every kept box
    assert torch.allclose(offset, offset[:1].expand_as(offset), atol=1e-3)
    assert torch.allclose(got[:, 2:4], expected[:, 2:4], atol=1e-3)
    assert torch.allclose(torch.cos(2 * got[:, 4]), torch.cos(2 * expected[:, 4]), atol=1e-4)
    all_centres = torch.from_numpy(boxes[:, :2]).float() * 0.5
    all_centres[:, 0] = 64 - all_centres[:, 0]
    inside = ((all_centres - offset[0]) >= 0).all(1) & ((all_centres - offset[0]) < 40).all(1)
    assert sorted(index.tolist()) == torch.nonzero(inside).flatten().tolist()


def test_dataset_errors_name_the_file(tmp_path):
    write_labelled_image(tmp_path, 'P0000', np.array([[20., 20., 8., 4., 0.]]), shape=(128, 128))
    from ifkd_mm.pretraining.mutdet.storage import write_npz

    wrong = tmp_path / 'labels' / 'P0001.npz'
    write_npz(str(wrong), boxes=np.zeros((1, 5), np.float32), labels=np.zeros(1, np.int64),
              embeddings=np.zeros((1, 4), np.float16), image_name=np.array('P0001.png'),
              image_shape=np.array([96, 128]))
    cv2.imwrite(str(tmp_path / 'images' / 'P0001.png'), np.zeros((128, 128, 3), np.uint8))
    dataset = pseudo_label_dataset(tmp_path, [])
    with pytest.raises(ValueError, match=r'P0001\.npz was made for an image of 96x128 px, but '
                                         r'.*P0001\.png is 128x128'):
        dataset[1]
    os.remove(tmp_path / 'images' / 'P0001.png')
    with pytest.raises(FileNotFoundError, match=r'P0001\.npz labels image P0001\.png, which is '
                                                r'not in'):
        pseudo_label_dataset(tmp_path, [])


def test_pictures_of_boxes_by_cluster_and_a_tsne(scenes, tmp_path):
    config = write_config(tmp_path, "dict(type='ComponentMaskGenerator', threshold=40)")
    out = str(tmp_path / 'out')
    from tools.mutdet.visualize_pseudo_labels import main as visualize

    make_pseudo_labels([config, '--images', scenes, '--out', out])
    written = visualize(['--images', scenes, '--out', out, '--num-images', '2',
                         '--num-clusters', '4'])
    pictures = sorted(os.listdir(osp.join(out, 'pictures')))
    assert pictures == ['P0000_pseudo_labels.png', 'P0001_pseudo_labels.png', 'tsne.png']
    drawn = cv2.imread(osp.join(out, 'pictures', 'P0000_pseudo_labels.png'))
    original = cv2.imread(osp.join(scenes, 'P0000.png'))
    assert drawn.shape == original.shape and (drawn != original).any()
    assert written[-1] == osp.join(out, 'pictures', 'tsne.png')


def test_random_mobile_sam_writes_valid_files_through_the_command(tmp_path, capsys):
    images = tmp_path / 'images'
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        image = np.full((96, 96, 3), 90, np.uint8)
        image[20:40, 10:70] = rng.integers(150, 255, 3)
        cv2.imwrite(str(images / f'P{i:04d}.png'), image)
    config = write_config(tmp_path, """dict(type='MaskGenerator', variant='vit_t', checkpoint=None,
    preset='paper', device='cpu', points_per_side=4, pred_iou_thresh=0.0,
    stability_score_thresh=0.0, box_nms_thresh=1.0)""", dim=2, clusters=2)
    out = tmp_path / 'out'
    make_pseudo_labels([config, '--images', str(images), '--out', str(out)])
    log = capsys.readouterr().out
    assert 'extract: 2 images processed' in log and 'assign: 2 images processed' in log
    summary = json.load(open(out / 'summary.json'))
    assert summary['images'] == 2 and summary['masks'] > 0
    for i in range(2):
        labels = np.load(out / 'labels' / f'P{i:04d}.npz')
        boxes = labels['boxes']
        assert boxes.shape[1] == 5 and len(boxes) == len(labels['labels'])
        assert labels['embeddings'].shape == (len(boxes), 2)
        assert (boxes[:, 2:4] > 0).all() and (np.abs(boxes[:, 4]) <= np.pi / 2).all()
