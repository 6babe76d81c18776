"""Two gloo processes gathering candidates equal one process on the whole batch (loss and gradients)."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from sentence.st_loss import HardNegativesRankingLoss

WORLD, LOCAL_BATCH, DIM = 2, 3, 5
SETTINGS = {"scale": 4.0, "tau_plus": 0.1, "beta": 1.0}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, columns: list[torch.Tensor], out) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        part = slice(rank * LOCAL_BATCH, (rank + 1) * LOCAL_BATCH)
        local = [c[part].clone().requires_grad_() for c in columns]
        loss = HardNegativesRankingLoss(nn.Identity(), gather_across_devices=True, **SETTINGS)
        value = loss.compute_loss_from_embeddings(local)
        value.backward()
        out[rank] = (value.detach(), [x.grad for x in local])
    finally:
        dist.destroy_process_group()


def test_gathered_candidates_equal_single_process() -> None:
    torch.manual_seed(0)
    columns = [torch.randn(WORLD * LOCAL_BATCH, DIM, dtype=torch.float64) for _ in range(3)]  # anchor, pos, neg
    out = mp.Manager().dict()
    mp.spawn(_worker, args=(_free_port(), columns, out), nprocs=WORLD, join=True)
    full = [c.clone().requires_grad_() for c in columns]
    value = HardNegativesRankingLoss(nn.Identity(), **SETTINGS).compute_loss_from_embeddings(full)
    value.backward()
    assert torch.stack([out[r][0] for r in range(WORLD)]).mean().item() == pytest.approx(value.item(), rel=1e-12)
    for column in range(3):  # DDP averages gradients over ranks: each rank holds WORLD x the global gradient
        gathered = torch.cat([out[r][1][column] for r in range(WORLD)]) / WORLD
        torch.testing.assert_close(gathered, full[column].grad, rtol=1e-10, atol=1e-12)
