"""Classification metrics from logits: top-1, top-5, mean per-class accuracy, loss."""
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
