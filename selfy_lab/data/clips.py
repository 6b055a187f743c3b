"""The dataset base of the package, :class:`ClipDataset`: items ``(clip, label)`` addressed as ``(index,
sample_seed)``; and the wrappers training puts around a dataset (a share of its labels, its clips unlabeled)."""
from __future__ import annotations

import numpy as np
import torch

from ..config.run import DataConfig
from .flip import flip_table
from .transforms import hflip


def item_address(item) -> tuple[int, int]:
    """(index, sample_seed) of a dataset item, addressed either way (a bare index means seed 0)."""
    return item if isinstance(item, tuple) else (item, 0)


class ClipDataset(torch.utils.data.Dataset):
    class_names: list[str]

    def __init__(self, cfg: DataConfig, *, frames: int, train: bool, class_names: list[str]):
        self.cfg, self.frames, self.train = cfg, frames, train
        self.class_names = class_names
        self.flip = flip_table(class_names, cfg.flip_policy) if train else [None] * len(class_names)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def labels(self) -> np.ndarray:
        raise NotImplementedError

    def clip(self, item) -> torch.Tensor:
        """The item's clip, sampled and cropped as ``__getitem__`` does but never flipped and without reading
        its label (what self-supervised pretraining sees)."""
        raise NotImplementedError

    def _augment(self, clip: torch.Tensor, label: int, rng) -> tuple[torch.Tensor, int]:
        """Flip (per the policy) after the crop; the crop is dataset specific."""
        target = self.flip[label]
        if target is not None and rng.random() < 0.5:
            return hflip(clip), target
        return clip, label


class Subset(torch.utils.data.Dataset):
    """Some items of a dataset (addressed as ``(index, sample_seed)`` like the dataset itself)."""

    def __init__(self, dataset: ClipDataset, indices: np.ndarray):
        self.dataset, self.indices = dataset, np.asarray(indices)
        self.class_names = dataset.class_names

    def __len__(self) -> int:
        return len(self.indices)

    def _item(self, item):
        index, seed = item_address(item)
        return int(self.indices[index]), seed

    def __getitem__(self, item):
        return self.dataset[self._item(item)]

    def clip(self, item) -> torch.Tensor:
        return self.dataset.clip(self._item(item))

    def labels(self) -> np.ndarray:
        return self.dataset.labels()[self.indices]


def label_subset(dataset: ClipDataset, fraction: float) -> Subset:
    """``fraction`` of every class's clips (at least one each), the same ones whatever the run's seed."""
    labels = dataset.labels()
    rng = np.random.default_rng(0)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        keep += sorted(rng.permutation(idx)[: max(1, round(fraction * len(idx)))].tolist())
    return Subset(dataset, np.sort(np.array(keep, dtype=np.int64)))


class Unlabeled(torch.utils.data.Dataset):
    """A dataset's clips without their labels, for self-supervised pretraining: only ``clip`` is called, and
    the label slot of each item is -1."""

    def __init__(self, dataset: ClipDataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item):
        return self.dataset.clip(item), -1
