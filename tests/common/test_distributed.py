"""Two gloo processes with gathered negatives equal one process on the whole batch."""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from common.losses import HardNegativeLoss, hcl_loss

WORLD, LOCAL_BATCH, DIM = 2, 4, 6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, port, z1, z2, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        part = slice(rank * LOCAL_BATCH, (rank + 1) * LOCAL_BATCH)
        a = z1[part].clone().requires_grad_()
        b = z2[part].clone().requires_grad_()
        loss = HardNegativeLoss(temperature=0.5, tau_plus=0.1, beta=1.0, gather_distributed=True)(a, b)
        loss.backward()
        out[rank] = (loss.detach(), a.grad, b.grad)
    finally:
        dist.destroy_process_group()


def test_gathered_loss_and_gradients_equal_single_process():
    torch.manual_seed(0)
    z1 = torch.randn(WORLD * LOCAL_BATCH, DIM, dtype=torch.float64)
    z2 = torch.randn(WORLD * LOCAL_BATCH, DIM, dtype=torch.float64)
    manager = mp.Manager()
    out = manager.dict()
    mp.spawn(_worker, args=(_free_port(), z1, z2, out), nprocs=WORLD, join=True)

    full1, full2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    full = hcl_loss(full1, full2, temperature=0.5, tau_plus=0.1, beta=1.0)
    full.backward()
    losses = torch.stack([out[r][0] for r in range(WORLD)])
    # Each rank's loss is the mean over its anchors; the ranks' mean is the global loss.
    assert losses.mean().item() == pytest.approx(full.item(), rel=1e-12)
    # DDP averages gradients over ranks, so each rank's gradient is WORLD x the global one.
    grad1 = torch.cat([out[r][1] for r in range(WORLD)]) / WORLD
    grad2 = torch.cat([out[r][2] for r in range(WORLD)]) / WORLD
    assert torch.allclose(grad1, full1.grad, rtol=1e-10, atol=1e-13)
    assert torch.allclose(grad2, full2.grad, rtol=1e-10, atol=1e-13)
