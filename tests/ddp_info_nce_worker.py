"""Run under torchrun with 2 processes by tests/test_hcml.py: each process scores its half of one batch with
info_nce; rank 0 writes the mean loss and every rank's prediction gradients to the JSON file argv[1]."""
import json
import sys

import torch
import torch.distributed as dist

from selfy_lab.models.hcml import info_nce


def main() -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    pred, target = torch.randn(12, 5, dtype=torch.float64), torch.randn(12, 5, dtype=torch.float64)
    rows = slice(rank * 12 // world, (rank + 1) * 12 // world)
    p = pred[rows].clone().requires_grad_(True)
    loss = info_nce(p, target[rows], 0.2) / world  # DistributedDataParallel averages over processes
    loss.backward()
    total = loss.detach().clone()
    dist.all_reduce(total)
    grads = [torch.zeros_like(p.grad) for _ in range(world)]
    dist.all_gather(grads, p.grad)
    if rank == 0:
        with open(sys.argv[1], "w") as f:
            json.dump({"loss": total.item(), "grad": torch.cat(grads).tolist()}, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
