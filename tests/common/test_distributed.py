"""Two gloo processes with gathered negatives equal one process on the whole batch.

For HCL's hard loss (the module form) and for every registered contrastive objective built by
name, loss and gradients. DCLW's weight (a softmax over the batch's positive pairs) and MoCHi's
random synthesis are global-batch quantities: their two-view forms gather the pairs' logits and
draw for the global batch, so they too are exact.
"""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from common.losses import HardNegativeLoss, hcl_loss
from common.objectives import REGISTRY, build

WORLD, LOCAL_BATCH, DIM = 2, 4, 6
# 2 x 2 x 4 = 16 candidates: 14 negatives per anchor, so the batch-bound parameters are set to fit.
SPECS = [name for name, family in REGISTRY.items() if not family.local_global and name not in ("fnc", "ring", "mochi")]
SPECS += ["fnc:topk=30000,threshold=-0.5", "fnc:topk=30000,threshold=-0.5,mode=elimination", "fnc", "ring:lower=0.3,upper=0.8", "ring",
          "mochi:num_hard=6,num_mix=5,num_query_mix=3,seed=7"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, port, z1, z2, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        part = slice(rank * LOCAL_BATCH, (rank + 1) * LOCAL_BATCH)
        results = {}
        losses = {"HardNegativeLoss": HardNegativeLoss(temperature=0.5, tau_plus=0.1, beta=1.0, gather_distributed=True)}
        losses.update({spec: build(spec, temperature=0.5, gather_distributed=True) for spec in SPECS})
        for spec, loss_fn in losses.items():
            a = z1[part].clone().requires_grad_()
            b = z2[part].clone().requires_grad_()
            loss = loss_fn(a, b)
            loss.backward()
            results[spec] = (loss.detach(), a.grad, b.grad)
        out[rank] = results
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def gathered():
    torch.manual_seed(0)
    z1 = torch.randn(WORLD * LOCAL_BATCH, DIM, dtype=torch.float64)
    z2 = z1 + 0.8 * torch.randn(WORLD * LOCAL_BATCH, DIM, dtype=torch.float64)
    manager = mp.Manager()
    out = manager.dict()
    mp.spawn(_worker, args=(_free_port(), z1, z2, out), nprocs=WORLD, join=True)
    return z1, z2, {rank: out[rank] for rank in range(WORLD)}


def _single_process(spec, z1, z2):
    full1, full2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    if spec == "HardNegativeLoss":
        full = hcl_loss(full1, full2, temperature=0.5, tau_plus=0.1, beta=1.0)
    else:
        full = build(spec, temperature=0.5)(full1, full2)
    full.backward()
    return full, full1.grad, full2.grad


@pytest.mark.parametrize("spec", ["HardNegativeLoss", *SPECS])
def test_gathered_loss_and_gradients_equal_single_process(gathered, spec):
    z1, z2, out = gathered
    full, grad1_full, grad2_full = _single_process(spec, z1, z2)
    losses = torch.stack([out[r][spec][0] for r in range(WORLD)])
    # Each rank's loss is the mean over its anchors; the ranks' mean is the global loss.
    assert losses.mean().item() == pytest.approx(full.item(), rel=1e-12)
    # DDP averages gradients over ranks, so each rank's gradient is WORLD x the global one.
    grad1 = torch.cat([out[r][spec][1] for r in range(WORLD)]) / WORLD
    grad2 = torch.cat([out[r][spec][2] for r in range(WORLD)]) / WORLD
    assert torch.allclose(grad1, grad1_full, rtol=1e-10, atol=1e-13)
    assert torch.allclose(grad2, grad2_full, rtol=1e-10, atol=1e-13)


def test_the_per_rank_dclw_weight_would_not_be_exact(gathered):
    """Why dclw_two_view gathers: the masked form on one rank's anchors (all ranks' candidates) averages the weight over
    that rank's pairs only, which is not the global batch's loss."""
    from common.decoupled import dclw_loss
    from common.views import two_view_masks

    z1, z2, out = gathered
    candidates = torch.cat([z1, z2])
    per_rank = []
    for r in range(WORLD):
        part = slice(r * LOCAL_BATCH, (r + 1) * LOCAL_BATCH)
        pos, neg = two_view_masks(LOCAL_BATCH, r, WORLD, torch.device("cpu"))
        per_rank.append(dclw_loss(torch.cat([z1[part], z2[part]]), candidates, pos, neg, temperature=0.5))
    full = build("dclw", temperature=0.5)(z1, z2)
    assert torch.stack([out[r]["dclw"][0] for r in range(WORLD)]).mean().item() == pytest.approx(full.item(), rel=1e-12)
    assert abs(torch.stack(per_rank).mean().item() - full.item()) > 1e-4
