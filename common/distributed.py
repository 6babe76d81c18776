"""Gathering embeddings across ``torch.distributed`` ranks with gradients.

A plain ``all_gather`` cuts the graph: other ranks' embeddings would be constants, and
each rank's loss would push only on its own samples. Here the backward pass sums the
gradient every rank computed for a sample and hands it back to the rank that owns it.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def rank_and_world() -> tuple[int, int]:
    """(rank, world size), or (0, 1) when no process group is initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _AllGather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)  # every rank's loss contributes to every sample
        return grad.chunk(dist.get_world_size())[dist.get_rank()]


def gather_with_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` (same shape on every rank) from all ranks, in rank order."""
    _, world = rank_and_world()
    return x if world == 1 else _AllGather.apply(x)
