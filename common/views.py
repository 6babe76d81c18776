"""Any masked-form objective on two augmented views (SimCLR's 2B anchors).

Anchors are both views of the local batch; candidates are both views of the global batch
(gathered across ranks with gradients when asked). Each anchor's positive is its other
view, its negatives every candidate but itself and that partner. Only bool masks of shape
(2B, 2WB) are built here; the float tensors belong to the objective.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from common.distributed import gather_with_grad, rank_and_world


def two_view_masks(batch: int, rank: int, world: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """(pos_mask, neg_mask) of the 2B local anchors against the 2WB candidates [view 1 of all ranks, view 2]."""
    local = torch.arange(batch, device=device) + rank * batch
    own = torch.cat([local, local + world * batch])  # each anchor's own column
    partner = torch.cat([local + world * batch, local])
    shape = (2 * batch, 2 * world * batch)
    # Filled, then scattered: comparing against a column index took ~10x longer than a fill at 2048 x 2048.
    pos_mask = torch.zeros(shape, dtype=torch.bool, device=device).scatter_(1, partner.unsqueeze(1), True)
    neg_mask = torch.ones(shape, dtype=torch.bool, device=device).scatter_(1, torch.stack([own, partner], 1), False)
    return pos_mask, neg_mask


def check_views(z1: Tensor, z2: Tensor, world: int) -> None:
    """``ValueError`` unless ``z1`` and ``z2`` are ``(B, d)`` of one shape with at least 2 samples over ``world`` ranks."""
    for name, z in (("z1", z1), ("z2", z2)):
        if z.dim() != 2:
            raise ValueError(f"{name} must have shape (batch, dim), got {tuple(z.shape)}")
    if z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must have the same shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if z1.shape[0] * world < 2:
        raise ValueError(f"need at least 2 samples across all ranks for negatives, got batch size {z1.shape[0]}")


def two_view_loss(
    masked_fn: Callable[..., Tensor], z1: Tensor, z2: Tensor, *, gather_distributed: bool = False, **kwargs: Any
) -> Tensor:
    """``masked_fn`` (the masked form, e.g. :func:`common.losses.masked_hcl_loss`) on views ``(B, d)``.

    With ``gather_distributed`` the other ranks' views are extra negatives (with gradients);
    every rank must pass the same B, and DDP's gradient average then gives the gradient of
    the global-batch loss for objectives whose rows are independent.
    """
    rank, world = rank_and_world() if gather_distributed else (0, 1)
    check_views(z1, z2, world)
    batch = z1.shape[0]
    all1, all2 = (gather_with_grad(z1), gather_with_grad(z2)) if world > 1 else (z1, z2)
    pos_mask, neg_mask = two_view_masks(batch, rank, world, z1.device)
    return masked_fn(torch.cat([z1, z2]), torch.cat([all1, all2]), pos_mask, neg_mask, **kwargs)
