r"""Hard negative mixing (MoCHi), in-batch.

Kalantidis et al. synthesise extra hard negatives per anchor :math:`q` in feature space.
With :math:`\tilde n_1, \dots, \tilde n_N` its ``num_hard`` most similar negatives:

.. math::
    h_k = \frac{\alpha_k \tilde n_{i_k} + (1-\alpha_k)\,\tilde n_{j_k}}{\lVert\cdot\rVert},\;
        \alpha_k \sim U(0, 1),\; i_k \ne j_k, \quad k = 1..s; \qquad
    h'_k = \frac{\beta_k q + (1-\beta_k)\,\tilde n_{j_k}}{\lVert\cdot\rVert},\;
        \beta_k \sim U(0, \tfrac12), \quad k = 1..s',

    \mathcal{L} = -\log \frac{e^{s^+/t}}{e^{s^+/t} + \sum_j e^{q^\top n_j/t}
        + \sum_k e^{q^\top h_k/t} + \sum_k e^{q^\top h'_k/t}}

The synthetic points are constants (no gradient through the synthesis, as for MoCo's queue):
the gradient reaches the anchor through :math:`q^\top h`, not the mixed candidates. MoCHi
mixes the hardest entries of a 16k-65k queue (its ImageNet setting: N = 1024, s = 1024,
s' = 128 to 256); in-batch the defaults are scaled down (N = 16, s = 16, s' = 4: a graph
batch's fewest negatives are 25, DD's last batch of 26 graphs).
Randomness comes from ``generator`` or, without one, from a generator seeded with ``seed``
on every call, so a call is reproducible; :func:`mixing_draws` fixes the order of the draws.
The registry's objective keeps one generator seeded from ``seed`` for the run, so each step
draws afresh. Draws are made for ``draw_rows`` rows (default: the anchors) and row ``r``
takes draw ``draw_index[r]``: :func:`mochi_two_view` with gathered negatives draws for the
global batch and takes its rank's rows, so W ranks equal one process on the global batch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from common.distributed import rank_and_world
from common.masked import MaskedBatch, info_nce_loss, masked_logsumexp, over_negatives, prepare
from common.views import two_view_loss


def mixing_draws(
    rows: int, num_hard: int, num_mix: int, num_query_mix: int, generator: torch.Generator, dtype: torch.dtype
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(first, second, alpha, query_pick, beta): ranks into each anchor's hardest list and coefficients.

    ``first != second``; alpha in [0, 1), beta in [0, 0.5); drawn in this order.
    """
    device = generator.device
    first = torch.randint(0, num_hard, (rows, num_mix), generator=generator, device=device)
    offset = torch.randint(1, max(num_hard, 2), (rows, num_mix), generator=generator, device=device)
    alpha = torch.rand(rows, num_mix, generator=generator, device=device, dtype=dtype)
    query_pick = torch.randint(0, num_hard, (rows, num_query_mix), generator=generator, device=device)
    beta = 0.5 * torch.rand(rows, num_query_mix, generator=generator, device=device, dtype=dtype)
    return first, (first + offset) % num_hard, alpha, query_pick, beta


def mochi_loss(
    anchors: Tensor,
    candidates: Tensor,
    pos_mask: Tensor,
    neg_mask: Tensor,
    *,
    temperature: float,
    row_weights: Tensor | None = None,
    num_hard: int = 16,
    num_mix: int = 16,
    num_query_mix: int = 4,
    seed: int = 0,
    generator: torch.Generator | None = None,
    draw_index: Tensor | None = None,
    draw_rows: int | None = None,
) -> Tensor:
    """InfoNCE with ``num_mix`` + ``num_query_mix`` synthetic hard negatives per anchor.

    The counts are validated by the registry; only ``num_hard`` against this batch's negatives is checked here.
    """
    num_hard, num_mix, num_query_mix = int(num_hard), int(num_mix), int(num_query_mix)
    batch = prepare(anchors, candidates, pos_mask, neg_mask, row_weights, temperature)
    fewest = int(batch.neg_count.min())
    if num_hard > fewest:
        raise ValueError(f"num_hard = {num_hard} exceeds the fewest negatives of an anchor ({fewest})")
    if generator is None:
        generator = torch.Generator(device=batch.anchors.device).manual_seed(int(seed))
    with torch.autocast(batch.anchors.device.type, enabled=False):
        synthetic = None
        if num_mix + num_query_mix:  # the hardest negatives are read before the log-sum-exp consumes the logits
            if draw_index is None:
                draw_index = torch.arange(anchors.shape[0], device=anchors.device)
            synthetic = _synthesise(batch, num_hard, num_mix, num_query_mix, generator, draw_index[batch.rows],
                                    anchors.shape[0] if draw_rows is None else draw_rows)
        log_neg = masked_logsumexp(batch, ~batch.neg_mask)
        if synthetic is not None:
            synthetic_logits = torch.einsum("rd,rkd->rk", batch.anchors, synthetic) / temperature
            log_neg = torch.logaddexp(log_neg, torch.logsumexp(synthetic_logits, dim=1))
        return info_nce_loss(batch, log_neg)


@torch.no_grad()
def _synthesise(batch: MaskedBatch, num_hard: int, num_mix: int, num_query_mix: int, generator: torch.Generator,
                draw_index: Tensor, draw_rows: int) -> Tensor:
    """(R, s + s', d) unit synthetic negatives: mixed hard pairs, then the anchor mixed with a hard one."""
    anchors, candidates = batch.anchors.detach(), batch.candidates.detach()
    hardest = over_negatives(batch, float("-inf"), lambda block, _: block.topk(num_hard, dim=1).indices)  # most similar first
    draws = mixing_draws(draw_rows, num_hard, num_mix, num_query_mix, generator, anchors.dtype)
    first, second, alpha, query_pick, beta = (d[draw_index] for d in draws)
    # In place where a fresh gather allows it: (R, s, d) is a quarter of an (R, C) matrix at s = 16, d = 128, C = R.
    mixed = candidates[hardest.gather(1, second)].lerp_(candidates[hardest.gather(1, first)], alpha.unsqueeze(2))
    with_query = candidates[hardest.gather(1, query_pick)].lerp_(anchors.unsqueeze(1), beta.unsqueeze(2))
    synthetic = torch.cat([mixed, with_query], dim=1)
    return synthetic.div_(synthetic.norm(dim=2, keepdim=True).clamp_min(1e-12))  # F.normalize, in place


def mochi_two_view(z1: Tensor, z2: Tensor, *, temperature: float, gather_distributed: bool = False,
                   **params) -> Tensor:
    """MoCHi on two views ``(B, d)``; with gathered negatives each rank takes its rows of the global draws.

    Anchors are ordered as in :func:`common.views.two_view_masks`: rank r's view-1 rows are
    global rows ``rB..rB+B-1`` and its view-2 rows ``WB + rB..``; every rank must pass the same B
    and the same generator state (one seed).
    """
    rank, world = rank_and_world() if gather_distributed else (0, 1)
    batch = z1.shape[0]
    local = torch.arange(batch, device=z1.device) + rank * batch
    return two_view_loss(mochi_loss, z1, z2, gather_distributed=gather_distributed, temperature=temperature,
                         draw_index=torch.cat([local, local + world * batch]), draw_rows=2 * world * batch, **params)
