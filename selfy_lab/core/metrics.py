"""Classification metrics from logits: top-1, top-5, mean per-class accuracy, loss; the confusion matrix and
what it says first (per-class accuracy, the most frequent confusions)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """``logits`` (N, K), ``labels`` (N,). Accuracies as fractions in [0, 1]."""
    logits, labels = logits.float().cpu(), labels.long().cpu()
    K = logits.shape[1]
    top = logits.topk(min(5, K), dim=1).indices
    hit1 = top[:, 0] == labels
    hit5 = (top == labels[:, None]).any(1)
    per_class = [hit1[labels == k].float().mean().item() for k in range(K) if (labels == k).any()]
    return {
        "top1": hit1.float().mean().item(),
        "top5": hit5.float().mean().item(),
        "mean_class": float(np.mean(per_class)),
        "loss": F.cross_entropy(logits, labels).item(),
    }


def confusion_matrix(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> np.ndarray:
    """(K, K) counts: row = true class, column = top-1 prediction."""
    pred = logits.float().argmax(1).cpu().numpy()
    true = labels.long().cpu().numpy()
    out = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(out, (true, pred), 1)
    return out


def per_class_accuracy(conf: np.ndarray) -> np.ndarray:
    """Top-1 of each true class (NaN for a class without clips)."""
    n = conf.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.diag(conf) / np.maximum(n, 1), np.nan)


def top_confusions(conf: np.ndarray, n: int = 10) -> list[tuple[int, int, int, float]]:
    """The ``n`` largest off-diagonal cells: (true, predicted, count, share of the true class's clips)."""
    off = conf.copy()
    np.fill_diagonal(off, 0)
    cells = [(int(i), int(j)) for i, j in zip(*np.unravel_index(np.argsort(-off, axis=None), off.shape))][:n]
    return [(i, j, int(off[i, j]), off[i, j] / conf[i].sum()) for i, j in cells if off[i, j] > 0]
