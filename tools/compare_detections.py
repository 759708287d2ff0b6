"""Draw the detections of several detectors on one validation image, side by side, as a PNG.

    python tools/compare_detections.py --model teacher TEACHER_CONFIG TEACHER_CKPT \
        --model student STUDENT_CONFIG STUDENT_CKPT --model distilled STUDENT_CONFIG student.pth \
        --out comparison.png [--index N | --image PATH] [--score-thr 0.3] [--top-k K] \
        [--device cpu] [--cfg-options key=value ...]

The image is the ``N``-th (default 0) of the first model config's ``val_dataloader.dataset``,
read through that dataset, whose ground-truth boxes are drawn in green in every panel; with
``--image`` it is that file (its ground truth is drawn when the dataset holds it). Each model is
built with ``mmdet.apis.init_detector`` and run with ``inference_detector``; its detections with
a score of at least ``--score-thr`` are drawn in orange with class name and score (with
``--top-k K``, only its K highest-scoring ones: models whose scores are calibrated differently,
e.g. a distilled student that learnt the teacher's softer scores, are then compared by rank, as
mAP compares them, rather than by one absolute threshold). Class names
are those of the dataset. One panel per model (the image scaled so that its longer side is
``--panel-size`` pixels, titled with the model's label and its number of detections), panels
side by side in the order of ``--model``. ``--cfg-options`` apply to every model's config.
"""
import argparse
import copy
import os.path as osp
import sys
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmengine.config import Config, DictAction

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

GT_COLOUR = (0, 200, 0)  # BGR
DET_COLOUR = (0, 140, 255)
TEXT_COLOUR = (0, 0, 0)
BACKGROUND = (255, 255, 255)
TITLE_HEIGHT = 44
MARGIN = 4
FONT = cv2.FONT_HERSHEY_SIMPLEX
TITLE_SCALE = (0.55, 0.45)  # first and second title line
TITLE_LINE_HEIGHT = 20
LABEL_SCALE = 0.4


@dataclass
class Detections:
    """Boxes ``(n, 4)`` as ``x1, y1, x2, y2`` pixels, class indices ``(n,)``, scores ``(n,)``."""
    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)


@dataclass
class ValidationImage:
    """An image path with its ground-truth boxes ``(n, 4)``, labels ``(n,)`` and class names."""
    path: str
    gt_boxes: np.ndarray
    gt_labels: np.ndarray
    classes: Tuple[str, ...]


def draw_boxes(image: np.ndarray, boxes: np.ndarray, colour: Tuple[int, int, int],
               texts: Optional[Sequence[str]] = None, thickness: int = 1) -> np.ndarray:
    """A copy of ``image`` with the boxes ``(n, 4)`` outlined (corners rounded to pixels).

    Each text is written on a filled band of the box colour, above the box's top-left corner
    (inside the box when there is no room above).
    """
    drawn = image.copy()
    for index, box in enumerate(np.round(np.asarray(boxes)).astype(np.int64).reshape(-1, 4)):
        x1, y1, x2, y2 = (int(v) for v in box)
        cv2.rectangle(drawn, (x1, y1), (x2, y2), colour, thickness, cv2.LINE_8)
        if texts:
            (width, height), baseline = cv2.getTextSize(texts[index], FONT, LABEL_SCALE, 1)
            top = y1 - height - baseline if y1 - height - baseline >= 0 else y1
            cv2.rectangle(drawn, (x1, top), (x1 + width, top + height + baseline), colour,
                          cv2.FILLED)
            cv2.putText(drawn, texts[index], (x1, top + height), FONT, LABEL_SCALE, TEXT_COLOUR,
                        1, cv2.LINE_AA)
    return drawn


def detection_texts(detections: Detections, classes: Sequence[str]) -> List[str]:
    """``'<class name> <score>'`` per detection (the index when it has no name)."""
    return [f'{classes[label] if 0 <= label < len(classes) else label} {score:.2f}'
            for label, score in zip(detections.labels.tolist(), detections.scores.tolist())]


def panel_title(label: str, num_detections: int, score_thr: float, num_gt: int,
                top_k: Optional[int] = None) -> List[str]:
    """The two title lines of a panel."""
    selection = f'score >= {score_thr:.2f}' + ('' if top_k is None else f', best {top_k}')
    return [f'{label}: {num_detections} detections',
            f'{selection}; green: {num_gt} ground truth']


def render_panel(image: np.ndarray, title: Sequence[str], detections: Detections,
                 classes: Sequence[str], gt_boxes: np.ndarray, panel_size: int) -> np.ndarray:
    """One panel: a title band over the image scaled to ``panel_size`` (longer side), with the
    ground truth (green) and the detections (orange, class and score) drawn on it, and a white
    margin of :data:`MARGIN` pixels left, right and below. Boxes are in ``image`` pixels."""
    scale = panel_size / max(image.shape[:2])
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    scaled = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    scaled = draw_boxes(scaled, np.asarray(gt_boxes, dtype=np.float64) * scale, GT_COLOUR,
                        thickness=2)
    scaled = draw_boxes(scaled, detections.boxes * scale, DET_COLOUR,
                        detection_texts(detections, classes))
    band = np.full((TITLE_HEIGHT, size[0], 3), BACKGROUND, dtype=np.uint8)
    for line, text in enumerate(title):
        cv2.putText(band, text, (2, (line + 1) * TITLE_LINE_HEIGHT - 2), FONT, TITLE_SCALE[line],
                    TEXT_COLOUR, 1, cv2.LINE_AA)
    return cv2.copyMakeBorder(np.concatenate([band, scaled]), 0, MARGIN, MARGIN, MARGIN,
                              cv2.BORDER_CONSTANT, value=BACKGROUND)


def compose_panels(panels: Sequence[np.ndarray]) -> np.ndarray:
    """The panels side by side (shorter ones padded with white at the bottom)."""
    height = max(panel.shape[0] for panel in panels)
    padded = [cv2.copyMakeBorder(panel, 0, height - panel.shape[0], 0, 0, cv2.BORDER_CONSTANT,
                                 value=BACKGROUND) for panel in panels]
    return np.concatenate(padded, axis=1)


def select_detections(pred_instances, score_thr: float,
                      top_k: Optional[int] = None) -> Detections:
    """The detections of an mmdet ``pred_instances`` with a score of at least ``score_thr``,
    with ``top_k`` the ``top_k`` highest-scoring of them (in order of decreasing score)."""
    keep = (pred_instances.scores >= score_thr).nonzero().flatten()
    if top_k is not None:
        order = pred_instances.scores[keep].argsort(descending=True, stable=True)
        keep = keep[order[:top_k]]
    return Detections(boxes=pred_instances.bboxes[keep].detach().cpu().numpy().reshape(-1, 4),
                      labels=pred_instances.labels[keep].detach().cpu().numpy(),
                      scores=pred_instances.scores[keep].detach().cpu().numpy())


def ground_truth(data_info: dict) -> Tuple[np.ndarray, np.ndarray]:
    """Boxes ``(n, 4)`` and labels of a dataset entry's instances that are not ignored."""
    instances = [inst for inst in data_info.get('instances', []) if not inst.get('ignore_flag')]
    boxes = np.array([inst['bbox'] for inst in instances], dtype=np.float64).reshape(-1, 4)
    return boxes, np.array([inst['bbox_label'] for inst in instances], dtype=np.int64)


def load_config(config: Union[str, Config], options: Optional[dict] = None) -> Config:
    """The config (a file or a ``Config``) with ``options`` (``--cfg-options``) merged in."""
    cfg = Config.fromfile(config) if isinstance(config, str) else copy.deepcopy(config)
    if options:
        cfg.merge_from_dict(options)
    return cfg


def validation_image(config: Union[str, Config], index: int = 0,
                     image_path: Optional[str] = None) -> ValidationImage:
    """The ``index``-th image of the config's ``val_dataloader.dataset`` with its ground truth,
    or ``image_path`` with the ground truth of the dataset's entry of that file (none if absent)."""
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope

    cfg = load_config(config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    dataset = DATASETS.build(copy.deepcopy(cfg.val_dataloader.dataset))
    classes = tuple(dataset.metainfo['classes'])
    if image_path is None:
        if not 0 <= index < len(dataset):
            raise IndexError(f'--index {index}: the validation set has {len(dataset)} images')
        info = dataset.get_data_info(index)
        return ValidationImage(info['img_path'], *ground_truth(info), classes)
    wanted = osp.realpath(image_path)
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        if osp.realpath(info['img_path']) == wanted:
            return ValidationImage(image_path, *ground_truth(info), classes)
    return ValidationImage(image_path, np.zeros((0, 4)), np.zeros(0, dtype=np.int64), classes)


def detect(config: Union[str, Config], checkpoint: str, image_path: str, score_thr: float,
           device: str, top_k: Optional[int] = None) -> Detections:
    """The detections of one model (built with ``init_detector``) on the image."""
    from mmdet.apis import inference_detector, init_detector

    model = init_detector(load_config(config), checkpoint, device=device)
    return select_detections(inference_detector(model, image_path).pred_instances, score_thr,
                             top_k)


def main(argv: Optional[Sequence[str]] = None) -> None:
    import ifkd_mm  # noqa: F401  (registers the modules, allow-lists checkpoint classes)

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', nargs=3, action='append', required=True,
                        metavar=('LABEL', 'CONFIG', 'CHECKPOINT'), help='a panel (repeatable)')
    parser.add_argument('--out', required=True, help='output PNG')
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--index', type=int, default=0,
                        help="index in the first config's validation set (default 0)")
    source.add_argument('--image', help='an image file instead')
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--top-k', type=int,
                        help="draw only each model's K highest-scoring detections (default: all)")
    parser.add_argument('--panel-size', type=int, default=512,
                        help='longer side of the image in each panel, in pixels (default 512)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help="key=value overrides of every model's config")
    args = parser.parse_args(argv)
    if args.top_k is not None and args.top_k < 1:
        parser.error(f'--top-k must be at least 1, got {args.top_k}')
    if not args.out.lower().endswith('.png'):
        raise ValueError(f'--out must be a .png file, got {args.out}')
    configs = [load_config(config, args.cfg_options) for _, config, _ in args.model]
    sample = validation_image(configs[0], args.index, args.image)
    image = cv2.imread(sample.path)
    if image is None:
        raise FileNotFoundError(f'cannot read the image {sample.path}')
    panels = []
    for (label, _, checkpoint), config in zip(args.model, configs):
        detections = detect(config, checkpoint, sample.path, args.score_thr, args.device,
                            args.top_k)
        title = panel_title(label, len(detections), args.score_thr, len(sample.gt_boxes),
                            args.top_k)
        panels.append(render_panel(image, title, detections, sample.classes, sample.gt_boxes,
                                   args.panel_size))
        print(f'{label}: {len(detections)} detections >= {args.score_thr}')
    if not cv2.imwrite(args.out, compose_panels(panels)):
        raise OSError(f'could not write {args.out}')
    print(f'wrote {args.out} ({sample.path}, {len(sample.gt_boxes)} ground-truth boxes)')


if __name__ == '__main__':
    main()
