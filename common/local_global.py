r"""InfoGraph's local-global objective (Jensen-Shannon form) with debiasing and hard negatives.

Sun, Hoffmann, Verma, Tang. "InfoGraph", ICLR 2020; the hard-negative variant of
Robinson et al., ICLR 2021. Scores :math:`q_{ig} = \langle h_i, g_j \rangle` between every
node embedding ``h_i`` and every graph embedding ``g_j`` of the batch; the pair
(node, its own graph) is positive, all other graphs are negatives. With
:math:`\mathrm{sp}` the softplus,

.. math::
    \mathcal{L} = \frac{1}{n}\sum_i \Big[\mathrm{sp}(-p_i)
        + \max\Big(0, \frac{\mathbb{E}_{w_i}[\mathrm{sp}(q_{ij})] - \tau^+\mathrm{sp}(p_i)}{1-\tau^+}\Big)\Big]
        - 2\log 2

in the ``paper`` convention, with :math:`w_{ij} \propto e^{\beta q_{ij}/s}` over the true
negatives of node i and :math:`s = \max_{ij}|q_{ij}|` over the batch's negatives (a
constant scale, not differentiated). The clamp at 0 mirrors the floor of the contrastive
estimator: the debiased estimate of a non-negative expectation never goes below 0.
``tau_plus = beta = 0`` is exactly InfoGraph's JSD objective.

The ``reference`` convention reproduces the authors' released graph code term for term
(joshr17/HCL ``graph/cortex_DIM/functions/gan_losses.py``, measure ``JSD_hard``):
weights :math:`e^{-2\beta q/s}` (note the sign; HCL issue 11) with
:math:`s = \max(\max q, |\min q|)` over the node-by-graph matrix whose positive entries
are set to 0 rather than left out, rows normalised by their mean over *all* graphs, and
and the debiasing term folded into the positive expectation of every matrix entry, where
it enters the loss as :math:`+\tfrac{\tau^+}{1-\tau^+}\mathrm{sp}(p)`: the opposite sign of
the debiased estimator's :math:`-\tau^+\mathrm{sp}(p)/(1-\tau^+)` used by ``paper``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

_LOG2 = math.log(2.0)


def _check_shapes(local: Tensor, graph: Tensor, batch: Tensor, counts: Tensor | None) -> int:
    """The number of graphs, once rows, batch ids and counts agree and a batch holds a negative for every node."""
    num_graphs = graph.shape[0]
    if num_graphs < 2:
        raise ValueError(f"need at least 2 graphs in a batch for negatives, got {num_graphs}")
    if local.shape[0] != batch.shape[0] or (counts is not None and counts.shape != batch.shape):
        raise ValueError(f"batch has {batch.shape[0]} entries for {local.shape[0]} nodes"
                         + ("" if counts is None else f" and {tuple(counts.shape)} counts"))
    return num_graphs


def local_global_loss(
    local: Tensor,
    graph: Tensor,
    batch: Tensor,
    *,
    tau_plus: float = 0.0,
    beta: float = 0.0,
    convention: str = "paper",
    counts: Tensor | None = None,
) -> Tensor:
    """Local-global JSD loss of node embeddings ``(n, d)`` against graph embeddings ``(G, d)``.

    Args:
        local: node embeddings (after the local discriminator).
        graph: graph embeddings (after the global discriminator), G >= 2.
        batch: ``(n,)`` long, graph index of every node (PyG's ``data.batch``).
        tau_plus: class prior of false negatives, in [0, 1).
        beta: hardness of the negative weighting, >= 0.
        convention: ``"paper"`` or ``"reference"`` (see module docstring).
            Parameters are validated by the registry (family ``jsd``).
        counts: ``(n,)`` how many nodes each row stands for (default: one each). The loss
            equals that of the rows repeated ``counts`` times (:mod:`graph.wl` finds the
            nodes that share a row).
    """
    num_graphs = _check_shapes(local, graph, batch, counts)
    scores = local @ graph.T  # (n, G)
    counts = None if counts is None else counts.to(scores.dtype)
    own = batch.unsqueeze(1)  # the positive entry of each row, gathered or written over rather than masked
    if convention == "reference":
        return _reference(scores, own, tau_plus, beta, counts)
    if beta == 0.0:
        # All graphs minus the node's own: the subtracted term is the very same float, so its
        # gradient cancels exactly and no (n, G) mask is built.
        row_sums, pos_score = _SoftplusRowSums.apply(scores, own)
        neg_expectation = (row_sums - F.softplus(pos_score)) / (num_graphs - 1)
    else:
        pos_score = scores.gather(1, own).squeeze(1)
        neg_softplus = F.softplus(scores)
        low, high = torch.aminmax(scores.detach().scatter(1, own, 0.0))
        scale = torch.maximum(high, -low).clamp_min(torch.finfo(scores.dtype).tiny)
        weights = torch.softmax((scores * (beta / scale)).scatter_(1, own, float("-inf")), dim=1)
        neg_expectation = (weights * neg_softplus).sum(dim=1)
    if tau_plus > 0.0:
        neg_expectation = ((neg_expectation - tau_plus * F.softplus(pos_score)) / (1.0 - tau_plus)).clamp_min(0.0)
    return _node_sum(F.softplus(-pos_score) + neg_expectation, counts) / _num_nodes(scores, counts) - 2 * _LOG2


def _node_sum(per_row: Tensor, counts: Tensor | None) -> Tensor:
    """Sum of a per-row term over the nodes the rows stand for."""
    return per_row.sum() if counts is None else (per_row * counts).sum()


def _num_nodes(scores: Tensor, counts: Tensor | None) -> int | Tensor:
    """How many nodes the rows stand for (a tensor with ``counts``: no host sync)."""
    return scores.shape[0] if counts is None else counts.sum()


def _reference(scores: Tensor, own: Tensor, tau_plus: float, beta: float, counts: Tensor | None) -> Tensor:
    """The released code's arithmetic, vectorised (its masks were built node by node).

    The released code zeroes the positive entries of the (n, G) matrix instead of leaving
    them out. A zeroed entry adds a known constant to the positive sum, so that sum is taken
    over the n true positives plus a count, not over the whole matrix; the row
    normalisation of the weights is likewise applied to row sums, not entry by entry.
    """
    num_nodes, num_graphs = _num_nodes(scores, counts), scores.shape[1]
    entries, ratio = num_nodes * num_graphs, tau_plus / (1.0 - tau_plus)
    if beta == 0.0:  # released: (sp(q) - log2) / (1 - tau_plus) per entry; a zeroed positive gives sp(0) - log2 = 0
        row_sums, pos = _SoftplusRowSums.apply(scores, own)
        neg_sum = (_node_sum(row_sums - F.softplus(pos), counts) - (entries - num_nodes) * _LOG2) / (1.0 - tau_plus)
    else:  # released: w * sp(q) / (1 - tau_plus) - log2, w normalised by its row mean
        pos = scores.gather(1, own).squeeze(1)
        neg_scores = scores.scatter(1, own, 0.0)
        neg_softplus = F.softplus(neg_scores)
        low, high = torch.aminmax(neg_scores)
        weights = torch.exp(neg_scores * (-2.0 * beta / torch.maximum(high, low.abs())))
        weighted = _node_sum((weights * neg_softplus).sum(dim=1) / weights.mean(dim=1), counts)
        neg_sum = weighted / (1.0 - tau_plus) - entries * _LOG2
    # released: log2 - sp(-p) - ratio * sp(p) on every entry; a zeroed one gives -ratio * log2
    pos_sum = _node_sum(_LOG2 - F.softplus(-pos) - ratio * F.softplus(pos), counts) - (entries - num_nodes) * ratio * _LOG2
    return neg_sum / (num_nodes * (num_graphs - 1)) - pos_sum / num_nodes


class _SoftplusRowSums(torch.autograd.Function):
    """``(softplus(scores).sum(1), scores[i, own[i]])`` with a single ``(n, G)`` pass backward.

    Autograd of the plain expressions would write a zero ``(n, G)`` gradient for the
    gathered positive entries and add it to the softplus gradient: two more passes over the
    largest tensor of the step (``make bench-graph`` times the epoch).
    """

    @staticmethod
    def forward(ctx, scores: Tensor, own: Tensor) -> tuple[Tensor, Tensor]:
        ctx.save_for_backward(scores, own)
        return F.softplus(scores).sum(dim=1), scores.gather(1, own).squeeze(1)

    @staticmethod
    def backward(ctx, grad_sums: Tensor, grad_pos: Tensor) -> tuple[Tensor, None]:
        scores, own = ctx.saved_tensors
        # F.softplus's own derivative (same threshold), each row's gradient broadcast without a copy
        grad = torch.ops.aten.softplus_backward(grad_sums.unsqueeze(1).expand_as(scores), scores, 1.0, 20.0)
        return grad.scatter_add_(1, own, grad_pos.unsqueeze(1)), None


def infonce_local_global(
    masked_fn: Callable[..., Tensor],
    local: Tensor,
    graph: Tensor,
    batch: Tensor,
    *,
    counts: Tensor | None = None,
    **kwargs: Any,
) -> Tensor:
    """InfoNCE-family local-global estimator: any masked-form objective on nodes against graphs.

    Node rows ``(n, d)`` are the anchors and the batch's graph embeddings ``(G, d)`` the
    candidates; each node's own graph is its positive and the other graphs its negatives
    (InfoGraph's InfoNCE option; PyGCL's G2L mode). ``counts`` become the objective's
    ``row_weights``: the loss equals that of the rows repeated ``counts`` times.

    Args:
        masked_fn: a masked-form objective, e.g. :func:`common.losses.masked_hcl_loss`.
        local, graph, batch, counts: as in :func:`local_global_loss` (G >= 2).
        kwargs: the objective's parameters (temperature included).
    """
    num_graphs = _check_shapes(local, graph, batch, counts)
    pos_mask = batch.unsqueeze(1) == torch.arange(num_graphs, device=batch.device)
    extra = {} if counts is None else {"row_weights": counts}
    return masked_fn(local, graph, pos_mask, ~pos_mask, **extra, **kwargs)
