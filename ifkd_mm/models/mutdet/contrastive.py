"""MutDet's contrastive alignment (eq. 2) and the shared head that predicts the embeddings."""
import torch
import torch.nn.functional as F
from mmdet.models.layers.transformer.utils import MLP
from torch import Tensor


def contrastive_alignment_loss(predicted: Tensor, targets: Tensor, tau: float = 0.2) -> Tensor:
    """Eq. 2: symmetric InfoNCE between M row-paired vectors Z (``predicted``) and O
    (``targets``), both L2-normalised here::

        L = -(2 tau / M) sum_i [log softmax_k(z_i . o_k / tau)_i + log softmax_k(o_i . z_k / tau)_i]

    i.e. ``2 tau (CE(Z O^T / tau) + CE(O Z^T / tau))`` with the diagonal as labels, which is also
    what the public code computes. Both inputs get gradients (O_enh is learnt in MutDet).

    Args:
        predicted: (M, D) predicted embeddings.
        targets: (M, D) object embeddings, row i paired with ``predicted[i]``.
        tau: temperature (0.2 in the paper).

    Returns:
        A scalar. M = 0 gives a zero that is still connected to both inputs' graphs (backward
        works and DDP sees the parameters that produced them); M = 1 gives exactly 0.
    """
    if predicted.dim() != 2 or predicted.shape != targets.shape:
        raise ValueError(f'predicted and targets must both be (M, D) with the same shape, got '
                         f'{tuple(predicted.shape)} and {tuple(targets.shape)}')
    if tau <= 0:
        raise ValueError(f'tau must be > 0, got {tau}')
    num_pairs = predicted.shape[0]
    if num_pairs == 0:
        return (predicted.sum() + targets.sum()) * 0.0
    logits = F.normalize(predicted, dim=1) @ F.normalize(targets, dim=1).t() / tau
    labels = torch.arange(num_pairs, device=logits.device)
    return 2 * tau * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels))


class EmbeddingHead(MLP):
    """The 2-layer MLP (Linear, ReLU, Linear), shared by every prediction path (decoder, encoder
    top-N, siamese branch), from query features to predicted embeddings Z.

    Args:
        embed_dims: width of the query features (and of the hidden layer).
        object_dims: width of the object embeddings (256).
    """

    def __init__(self, embed_dims: int = 256, object_dims: int = 256) -> None:
        super().__init__(embed_dims, embed_dims, object_dims, num_layers=2)
