"""MutDet's pseudo classes: PCA of the box embeddings to 256-d, k-means into 256 clusters.

Paper section 3.1 ("Preparation", after AlignDet): the box embeddings are reduced by PCA to
256-d object embeddings, and the normalised object embeddings are clustered by k-means into 256
pseudo classes. The public code (floatingstarZ/MutDet) only *applies* a pickled fit (projection,
bias, centres: ``x @ A.T + b``, L2-normalised, class = argmax of the cosine to the normalised
centres); the fitting itself is not in the repository. Here it is fitted on the whole set with
memory bounded independently of the number of boxes:

1. one pass of scikit-learn's ``IncrementalPCA.partial_fit`` over the embeddings re-chunked to at
   most ``batch_size`` rows (:func:`rechunk`), which also draws a uniform sample of ``batch_size``
   rows (:class:`UniformRowSample`);
2. ``MiniBatchKMeans.partial_fit`` on the L2-normalised projections: k-means++ (seeded) on the
   projected uniform sample, then ``kmeans_passes`` passes over the chunks. The sample, rather than
   the stream's first chunk, seeds the centres because the stream is ordered by image: its first
   chunk holds the boxes of a few images only.

Assignment follows the public code: nearest centre by cosine.
"""
import json
import os
import os.path as osp
import tempfile
import zipfile
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np
from sklearn.cluster import MiniBatchKMeans
from sklearn.decomposition import IncrementalPCA

PSEUDO_CLASS_FIELDS = ('mean', 'components', 'centres', 'settings')


class TooFewRowsError(ValueError):
    """A stream holds fewer rows than one chunk needs."""

    def __init__(self, num_rows: int, min_rows: int) -> None:
        super().__init__(f'{num_rows} rows in all, fewer than the {min_rows} needed')
        self.num_rows = num_rows
        self.min_rows = min_rows


def checked_arrays(arrays: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """``arrays`` as float32, each checked to be 2-d, finite and as wide as the first."""
    width = None
    for index, array in enumerate(arrays):
        array = np.asarray(array, dtype=np.float32)
        if array.ndim != 2:
            raise ValueError(f'batch {index} must be a 2-d (n, D) array, got shape {array.shape}')
        if width is None:
            width = array.shape[1]
        elif array.shape[1] != width:
            raise ValueError(f'batch {index} has width {array.shape[1]}, earlier batches {width}')
        if not np.isfinite(array).all():
            raise ValueError(f'batch {index} has non-finite values')
        yield array


def rechunk(arrays: Iterable[np.ndarray], batch_size: int, min_rows: int) -> Iterator[np.ndarray]:
    """Regroup the rows of 2-d ``arrays`` (in order) into chunks of ``min_rows..batch_size`` rows.

    All chunks have ``batch_size`` rows except the last one or two: a short remainder is not
    appended to the previous chunk (that one would exceed ``batch_size``) but shared with it,
    as two halves of at least ``batch_size // 2 >= min_rows`` rows. Held in memory: a few times
    ``batch_size`` rows plus the largest incoming array. Raises :class:`TooFewRowsError` when all
    the rows together are fewer than ``min_rows``.
    """
    if batch_size < 2 * min_rows:
        raise ValueError(f'batch_size ({batch_size}) must be at least twice min_rows ({min_rows})')
    pending: Optional[np.ndarray] = None
    buffer: List[np.ndarray] = []
    buffered = 0
    for array in arrays:
        buffer.append(array)
        buffered += len(array)
        if buffered < batch_size:
            continue
        stacked = np.concatenate(buffer)
        num_full = len(stacked) // batch_size
        for start in range(0, num_full * batch_size, batch_size):
            if pending is not None:
                yield pending
            pending = stacked[start:start + batch_size]
        buffer = [stacked[num_full * batch_size:]]
        buffered = len(buffer[0])
    tail = np.concatenate(buffer) if buffer else np.zeros((0, 0), dtype=np.float32)
    if pending is None:
        if len(tail) < min_rows:
            raise TooFewRowsError(len(tail), min_rows)
        yield tail
    elif len(tail) == 0 or len(tail) >= min_rows:
        yield pending
        if len(tail):
            yield tail
    else:
        merged = np.concatenate([pending, tail])
        half = (len(merged) + 1) // 2
        yield merged[:half]
        yield merged[half:]


class UniformRowSample:
    """A uniform sample without replacement of at most ``size`` rows of a stream, seeded.

    Bottom-k sampling: every row gets a random key, the rows with the ``size`` smallest keys are
    kept, so memory stays at ``size`` rows whatever the length of the stream.
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.rng = np.random.default_rng(seed)
        self.rows: Optional[np.ndarray] = None
        self.keys = np.zeros(0)

    def add(self, rows: np.ndarray) -> None:
        """Offer ``rows`` (n, D) to the sample."""
        keys = np.concatenate([self.keys, self.rng.random(len(rows))])
        rows = rows if self.rows is None else np.concatenate([self.rows, rows])
        keep = np.sort(np.argsort(keys, kind='stable')[:self.size])
        self.rows, self.keys = rows[keep], keys[keep]


def normalised_projection(embeddings: np.ndarray, mean: np.ndarray,
                          components: np.ndarray) -> np.ndarray:
    """PCA projection ``(x - mean) @ components.T``, each row scaled to unit length (float32)."""
    projected = (np.asarray(embeddings, dtype=np.float32) - mean) @ components.T
    norms = np.linalg.norm(projected, axis=1, keepdims=True)
    return projected / np.maximum(norms, np.finfo(np.float32).tiny)


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows of ``matrix`` scaled to unit length (float32)."""
    matrix = np.asarray(matrix, dtype=np.float32)
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True),
                               np.finfo(np.float32).tiny)


class PseudoClasses:
    """A fitted PCA (``mean`` (D,), ``components`` (dim, D)), unit-length ``centres`` (k, dim) and
    the ``settings`` of the fit."""

    def __init__(self, mean: np.ndarray, components: np.ndarray, centres: np.ndarray,
                 settings: Optional[Dict] = None) -> None:
        mean, components = np.asarray(mean, np.float32), np.asarray(components, np.float32)
        centres = np.asarray(centres, np.float32)
        if mean.ndim != 1 or components.ndim != 2 or components.shape[1] != len(mean):
            raise ValueError(f'PCA mean {mean.shape} and components {components.shape} do not '
                             'fit: expected (D,) and (dim, D)')
        if centres.ndim != 2 or centres.shape[1] != len(components):
            raise ValueError(f'centres {centres.shape} do not fit the PCA dim '
                             f'{len(components)}: expected (num_clusters, {len(components)})')
        if not np.allclose(np.linalg.norm(centres, axis=1), 1, atol=1e-4):
            raise ValueError('centres must have unit length')
        self.mean, self.components, self.centres = mean, components, centres
        self.settings = dict(settings or {})

    @property
    def dim(self) -> int:
        """Length of the projected object embeddings (256 in the paper)."""
        return self.components.shape[0]

    @property
    def input_dim(self) -> int:
        """Length of the box embeddings the PCA was fitted on (2048 for ResNet-50)."""
        return self.components.shape[1]

    @property
    def num_clusters(self) -> int:
        """Number of pseudo classes (256 in the paper)."""
        return self.centres.shape[0]

    def assign(self, embeddings: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Cluster ids ``(n,)`` int64 (nearest centre by cosine) and the L2-normalised projected
        embeddings ``(n, dim)`` float16 of box embeddings ``(n, input_dim)``."""
        embeddings = np.asarray(embeddings)
        if embeddings.ndim != 2 or embeddings.shape[1] != self.input_dim:
            raise ValueError(f'embeddings of shape {embeddings.shape} do not fit pseudo classes '
                             f'fitted on {self.input_dim}-d embeddings: expected (n, '
                             f'{self.input_dim})')
        projected = normalised_projection(embeddings, self.mean, self.components)
        cluster_ids = np.argmax(projected @ self.centres.T, axis=1).astype(np.int64)
        return cluster_ids, projected.astype(np.float16)

    def save(self, path: str) -> None:
        """Write an ``.npz`` (mean, components, centres, settings as JSON), atomically."""
        folder = osp.dirname(osp.abspath(path))
        os.makedirs(folder, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, suffix='.tmp')
        try:
            with os.fdopen(handle, 'wb') as file:
                np.savez(file, mean=self.mean, components=self.components, centres=self.centres,
                         settings=np.array(json.dumps(self.settings, sort_keys=True)))
            os.replace(temporary, path)
        except BaseException:
            os.remove(temporary)
            raise

    @classmethod
    def load(cls, path: str, dim: Optional[int] = None,
             input_dim: Optional[int] = None) -> 'PseudoClasses':
        """Read a file written by :meth:`save`; ``dim`` / ``input_dim``, when given, must match
        the file's (a clear error naming the file otherwise)."""
        if not osp.isfile(path):
            raise FileNotFoundError(f'pseudo-class file {path} does not exist')
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [field for field in PSEUDO_CLASS_FIELDS if field not in data.files]
                if missing:
                    raise ValueError(f'missing fields {missing}')
                fields = {field: data[field] for field in PSEUDO_CLASS_FIELDS}
            classes = cls(fields['mean'], fields['components'], fields['centres'],
                          json.loads(str(fields['settings'])))
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            raise ValueError(f'{path} is not a valid pseudo-class file: {error}') from error
        for name, expected in (('dim', dim), ('input_dim', input_dim)):
            if expected is not None and getattr(classes, name) != expected:
                raise ValueError(f'pseudo-class file {path} has {name} {getattr(classes, name)}, '
                                 f'expected {expected}')
        return classes


def fit_pseudo_classes(batches: Callable[[], Iterable[np.ndarray]],
                       dim: int = 256,
                       num_clusters: int = 256,
                       seed: int = 0,
                       batch_size: int = 4096,
                       kmeans_passes: int = 5) -> PseudoClasses:
    """Fit the PCA to ``dim`` and ``num_clusters`` k-means centres on streamed box embeddings.

    Args:
        batches: returns a fresh iterable over ``(n_i, D)`` arrays each time it is called (once for
            the PCA, once per k-means pass); every call must give the same rows.
        dim: PCA output size (256 in the paper).
        num_clusters: number of pseudo classes (256 in the paper).
        seed: seeds the uniform sample and k-means (k-means++ init, centre reassignment).
        batch_size: rows per ``partial_fit``; memory is bounded by a few such chunks.
        kmeans_passes: passes of mini-batch k-means over all the embeddings.
    """
    min_rows = max(dim, num_clusters)
    if batch_size < 2 * min_rows:
        raise ValueError(f'batch_size ({batch_size}) must be at least twice max(dim, '
                         f'num_clusters) = {min_rows}')
    if kmeans_passes < 1:
        raise ValueError(f'kmeans_passes must be at least 1, got {kmeans_passes}')

    def chunks() -> Iterator[np.ndarray]:
        try:
            yield from rechunk(checked_arrays(batches()), batch_size, min_rows)
        except TooFewRowsError as error:
            raise ValueError(f'found {error.num_rows} embeddings, need at least {min_rows} '
                             f'(dim={dim}, num_clusters={num_clusters})') from error

    pca = IncrementalPCA(n_components=dim)
    sample = UniformRowSample(batch_size, seed)
    num_vectors = 0
    for chunk in chunks():
        if chunk.shape[1] < dim:
            raise ValueError(f'dim={dim} exceeds the embedding width {chunk.shape[1]}')
        pca.partial_fit(chunk.astype(np.float64))
        sample.add(chunk)
        num_vectors += len(chunk)
    mean, components = pca.mean_.astype(np.float32), pca.components_.astype(np.float32)

    kmeans = MiniBatchKMeans(n_clusters=num_clusters, init='k-means++', n_init=1,
                             random_state=seed, batch_size=batch_size, compute_labels=False)
    kmeans.partial_fit(normalised_projection(sample.rows, mean, components))
    for kmeans_pass in range(kmeans_passes):
        seen = 0
        for chunk in chunks():
            kmeans.partial_fit(normalised_projection(chunk, mean, components))
            seen += len(chunk)
        if seen != num_vectors:
            raise ValueError(f'batches() gave {num_vectors} embeddings for the PCA but {seen} in '
                             f'k-means pass {kmeans_pass + 1}: it must give the same rows on '
                             'every call')
    settings = dict(dim=dim, num_clusters=num_clusters, seed=seed, batch_size=batch_size,
                    kmeans_passes=kmeans_passes, num_vectors=num_vectors,
                    input_dim=int(components.shape[1]),
                    explained_variance_ratio=float(pca.explained_variance_ratio_.sum()))
    return PseudoClasses(mean, components, unit_rows(kmeans.cluster_centers_), settings)
