"""Batches for training and evaluation, deterministic and shardable across processes."""
from __future__ import annotations

import numpy as np
import torch


def sample_seed(seed: int, epoch: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


class EpochBatchSampler(torch.utils.data.Sampler):
    """Yields batches of ``(index, sample_seed)``.

    The epoch's order depends only on (seed, epoch); each global batch of ``batch_size`` items is
    split into ``world`` equal contiguous shards and rank ``rank`` takes its shard, so N processes see
    exactly the global batches a single process would. Training drops the last partial batch.
    """

    def __init__(self, n: int, *, batch_size: int, seed: int, shuffle: bool, rank: int = 0, world: int = 1,
                 drop_last: bool = True):
        if batch_size % world:
            raise ValueError(f"batch size {batch_size} must be divisible by the {world} processes")
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.rank, self.world, self.drop_last = rank, world, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def __iter__(self):
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n) if self.shuffle else np.arange(self.n)
        per = self.batch_size // self.world
        for b in range(len(self)):
            batch = order[b * self.batch_size : (b + 1) * self.batch_size]
            if not self.drop_last:  # evaluation: strided shards, so a short last batch still splits
                shard = batch[self.rank :: self.world]
            else:
                shard = batch[self.rank * per : (self.rank + 1) * per]
            if len(shard):
                yield [(int(i), sample_seed(self.seed, self.epoch, int(i))) for i in shard]


def make_loader(dataset, *, batch_size: int, seed: int, train: bool, workers: int, rank: int = 0, world: int = 1,
                pin_memory: bool = False) -> torch.utils.data.DataLoader:
    sampler = EpochBatchSampler(len(dataset), batch_size=batch_size, seed=seed, shuffle=train, rank=rank, world=world,
                                drop_last=train and len(dataset) >= batch_size)
    return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=workers, pin_memory=pin_memory,
                                       persistent_workers=workers > 0)
