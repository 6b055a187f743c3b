"""Distributed training under ``torchrun``: one process per device, the main process the one that writes."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as tdist

from ..core.runtime import select_device


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            tdist.barrier()


def init_distributed(pref: str = "auto") -> Dist:
    """One process per device under ``torchrun`` (env WORLD_SIZE > 1), else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = select_device(pref)
    if world == 1:
        return Dist(0, 1, device)
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not tdist.is_initialized():
        tdist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(rank, world, device)
