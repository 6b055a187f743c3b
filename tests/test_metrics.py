"""Metrics from logits: top-k, mean per-class accuracy, the confusion matrix and its first readings."""
import numpy as np
import pytest
import torch

from selfy_lab.core.metrics import classification_metrics, confusion_matrix, per_class_accuracy, top_confusions


def test_confusion_matrix_and_per_class_accuracy_equal_a_loop():
    torch.manual_seed(0)
    logits, labels, K = torch.randn(50, 4), torch.randint(0, 3, (50,)), 4  # class 3 never occurs
    ref = np.zeros((K, K), dtype=int)
    for lg, y in zip(logits, labels):
        ref[int(y), int(lg.argmax())] += 1
    conf = confusion_matrix(logits, labels, K)
    assert (conf == ref).all() and conf.sum() == 50
    acc = per_class_accuracy(conf)
    for k in range(3):
        assert acc[k] == pytest.approx(ref[k, k] / ref[k].sum())
    assert np.isnan(acc[3])
    assert np.nanmean(acc) == pytest.approx(classification_metrics(logits, labels)["mean_class"])


def test_top_confusions_are_the_largest_off_diagonal_cells():
    conf = np.array([[5, 3, 0], [1, 7, 0], [4, 0, 2]])
    assert top_confusions(conf, 2) == [(2, 0, 4, 4 / 6), (0, 1, 3, 3 / 8)]
    assert top_confusions(np.eye(3, dtype=int)) == []  # nothing confused
