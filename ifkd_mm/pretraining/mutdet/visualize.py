"""Pictures of MutDet pseudo-labels: boxes coloured by cluster, and a t-SNE of the embeddings."""
import colorsys
from typing import List, Sequence, Tuple

import cv2
import numpy as np

from .storage import read_fields


def cluster_colours(num_clusters: int) -> np.ndarray:
    """(num_clusters, 3) uint8 RGB colours, hues spread by the golden ratio (neighbours differ)."""
    hues = (np.arange(num_clusters) * 0.618033988749895) % 1.0
    return np.array([[round(255 * c) for c in colorsys.hsv_to_rgb(h, 0.85, 0.95)] for h in hues],
                    dtype=np.uint8)


def rbox_corners(boxes: np.ndarray) -> np.ndarray:
    """(N, 4, 2) corners of le90 (cx, cy, w, h, theta) boxes."""
    cx, cy, w, h, theta = (boxes[:, i:i + 1] for i in range(5))
    cos, sin = np.cos(theta), np.sin(theta)
    local = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
    x = cx + local[:, 0] * w * cos - local[:, 1] * h * sin
    y = cy + local[:, 0] * w * sin + local[:, 1] * h * cos
    return np.stack([x, y], axis=-1)


def draw_pseudo_labels(image: np.ndarray, boxes: np.ndarray, labels: np.ndarray,
                       num_clusters: int = 256, thickness: int = 1) -> np.ndarray:
    """A copy of the RGB image with each box outlined in its cluster's colour."""
    canvas = image.copy()
    colours = cluster_colours(num_clusters)
    for corners, label in zip(rbox_corners(boxes.astype(np.float64)), labels):
        colour = tuple(int(c) for c in colours[int(label) % num_clusters])
        cv2.polylines(canvas, [np.round(corners).astype(np.int32)], True, colour, thickness,
                      cv2.LINE_AA)
    return canvas


def sample_embeddings(label_files: Sequence[str], max_points: int = 2000,
                      seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Up to ``max_points`` (embedding, cluster id) pairs drawn uniformly from the files."""
    embeddings: List[np.ndarray] = []
    labels: List[np.ndarray] = []
    for path in label_files:
        fields = read_fields(path, ('embeddings', 'labels'))
        embeddings.append(fields['embeddings'].astype(np.float32))
        labels.append(fields['labels'])
    embeddings_all, labels_all = np.concatenate(embeddings), np.concatenate(labels)
    if len(labels_all) > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(len(labels_all), max_points,
                                                          replace=False))
        embeddings_all, labels_all = embeddings_all[keep], labels_all[keep]
    return embeddings_all, labels_all


def tsne_picture(embeddings: np.ndarray, labels: np.ndarray, path: str, num_clusters: int = 256,
                 seed: int = 0) -> np.ndarray:
    """2-d t-SNE of the embeddings, saved as a scatter plot coloured by cluster; returns the 2-d
    points."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    if len(embeddings) < 3:
        raise ValueError(f't-SNE needs at least 3 embeddings, got {len(embeddings)}')
    points = TSNE(n_components=2, perplexity=min(30.0, (len(embeddings) - 1) / 3),
                  init='pca', random_state=seed).fit_transform(embeddings)
    colours = cluster_colours(num_clusters)[labels % num_clusters] / 255.0
    figure, axis = plt.subplots(figsize=(6, 6))
    axis.scatter(points[:, 0], points[:, 1], c=colours, s=6)
    axis.set_title(f't-SNE of {len(points)} pseudo-label embeddings, coloured by cluster')
    axis.set_xticks([])
    axis.set_yticks([])
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return points
