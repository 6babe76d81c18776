r"""Nodes that a GIN encoder cannot tell apart, found by Weisfeiler-Lehman colour refinement.

A GIN layer updates a node from its own vector and the *sum* of its in-neighbours' vectors
(``mlp(x + A x)``), and batch norm shifts and scales every node alike. After k rounds of
refinement, where a node's new colour is its old colour together with the multiset of its
in-neighbours' colours, two nodes of one colour therefore have equal embeddings after k layers,
for any weights (Xu et al., "How powerful are graph neural networks?", ICLR 2019, Lemma 2).

InfoGraph scores every node against every graph of the batch. Nodes of one graph with
equal embeddings have equal scores and equal loss terms, so the local head and the
node-by-graph scores need one row per (graph, colour) class, weighted by the class size: the
same loss and, since the encoder still runs on every node, the same gradients as one row per
node. REDDIT-BINARY's 859,254 nodes fall into 337,179 such classes at depth 3.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def wl_colours(x: Tensor, edge_index: Tensor, rounds: int) -> Tensor:
    """``(n,)`` colour ids after ``rounds`` refinements, equal exactly when the refinements agree.

    Starts from the distinct rows of ``x``; edges run ``edge_index[0] -> edge_index[1]``,
    repeated edges count repeatedly. Exact, no hashing: see :func:`_multiset_ids`.
    """
    num_nodes = x.shape[0]
    colours = _distinct_row_ids(x.reshape(num_nodes, -1))
    source, target = edge_index[0], edge_index[1]
    degree = torch.bincount(target, minlength=num_nodes)
    for _ in range(rounds):
        neighbours = _multiset_ids(target, colours[source], num_nodes)
        colours = _pair_ids(_pair_ids(colours, degree), neighbours + 1)
    return colours


def _distinct_row_ids(x: Tensor) -> Tensor:
    """Dense ids of the rows of ``x``, equal for byte-identical rows (one sort of the rows as byte strings).

    Rows that are equal as numbers but not as bytes (0.0 and -0.0) get two ids: that only
    splits a class, it never merges rows that differ.
    """
    rows = np.ascontiguousarray(x.detach().cpu().numpy())
    as_bytes = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    return torch.from_numpy(np.unique(as_bytes, return_inverse=True)[1].reshape(-1).astype(np.int64)).to(x.device)


def _pair_ids(a: Tensor, b: Tensor) -> Tensor:
    """Dense ids of the pairs ``(a[i], b[i])`` of non-negative integers: equal ids for equal pairs."""
    return torch.unique(a * (int(b.max()) + 1 if len(b) else 1) + b, return_inverse=True)[1]


def _multiset_ids(owner: Tensor, values: Tensor, num_owners: int) -> Tensor:
    """``(num_owners,)`` ids of the multisets ``{values[k] : owner[k] == i}``; -1 for an empty one.

    Each owner's values are sorted, then neighbouring values are paired and the pairs
    renumbered (a bijection), which halves every list; an odd list's last value is paired
    with a marker no value equals. Lists of one length are thereby mapped injectively, so
    the ids are exact once combined with the list length (the caller adds the degree).
    """
    width = int(values.max()) + 1 if len(values) else 1
    order = torch.sort(owner * width + values).values  # by owner, then by value
    owner, values = order // width, order % width
    while bool((same := owner[1:] == owner[:-1]).any()):  # some list still holds two or more values
        no = torch.zeros(1, dtype=torch.bool, device=owner.device)
        has_next = torch.cat([same, no])
        position = torch.arange(len(owner), device=owner.device)
        starts = torch.where(torch.cat([no, same]), 0, position)  # each list's first index, 0 elsewhere
        position = position - torch.cummax(starts, dim=0).values  # index within its list
        left = (position % 2 == 0).nonzero().squeeze(1)
        partner = torch.where(has_next[left], values[(left + 1).clamp_max(len(values) - 1)] + 1, 0)
        owner, values = owner[left], _pair_ids(values[left], partner)
    ids = torch.full((num_owners,), -1, dtype=torch.long, device=owner.device)
    return ids.index_copy_(0, owner, values)


def distinct_rows(colours: Tensor, batch: Tensor) -> tuple[Tensor, Tensor]:
    """``(rows, counts)``: one node per (graph, colour) class of a batch, and each class's size.

    ``colours`` from :func:`wl_colours` at the encoder's depth, ``batch[i]`` node i's graph.
    ``rows`` index the batch's nodes (the first node of each class); ``counts`` sum to the
    number of nodes.
    """
    inverse = _pair_ids(batch, colours)
    counts = torch.bincount(inverse)
    nodes = torch.arange(len(batch), device=batch.device)
    rows = torch.full_like(counts, len(batch)).scatter_reduce_(0, inverse, nodes, "amin")
    return rows, counts
