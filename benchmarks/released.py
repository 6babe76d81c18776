"""Transcriptions of the authors' released code, kept as oracles and as benchmark baselines.

Tests compare our losses and graph model with these (tests/common/test_local_global.py,
tests/graph/test_sparse.py); ``benchmarks.loss_speed`` and ``benchmarks.graph_epoch_speed``
time them. They reproduce the released arithmetic and its inefficiencies (raw ``exp``, masks
built with Python loops, PyG's ``GINConv`` and a re-collating ``DataLoader``) on purpose:
joshr17/HCL ``image/main.py`` (the hard loss) and ``graph/cortex_DIM/functions/gan_losses.py``
(``JSD_hard``), fanyun-sun/InfoGraph's ``unsupervised`` model and training loop.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from graph.model import InfoGraph


def naive_published(z1: torch.Tensor, z2: torch.Tensor, temperature=0.5, tau_plus=0.1, beta=1.0) -> torch.Tensor:
    """The published estimator as released: raw exponentials and a loop-built mask."""
    b = z1.shape[0]
    out = F.normalize(torch.cat([z1, z2]), dim=1)
    neg = torch.exp(out @ out.T / temperature)
    mask = torch.ones((b, 2 * b), dtype=torch.bool)
    for i in range(b):
        mask[i, i] = False
        mask[i, i + b] = False
    mask = torch.cat([mask, mask])
    neg = neg.masked_select(mask).view(2 * b, -1)
    pos = torch.exp((out[:b] * out[b:]).sum(-1) / temperature)
    pos = torch.cat([pos, pos])
    n = 2 * b - 2
    imp = (beta * neg.log()).exp()
    reweighted = (imp * neg).sum(-1) / imp.mean(-1)
    ng = ((-tau_plus * n * pos + reweighted) / (1 - tau_plus)).clamp(min=n * math.exp(-1 / temperature))
    return -torch.log(pos / (pos + ng)).mean()


def loop_masks(batch: torch.Tensor, g: int, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """(positive, negative) float masks of shape (n, g), built node by node as the released code does."""
    n = batch.shape[0]
    pos = torch.zeros(n, g, dtype=dtype)
    neg = torch.ones(n, g, dtype=dtype)
    for node, gid in enumerate(batch.tolist()):
        pos[node, gid] = 1.0
        neg[node, gid] = 0.0
    return pos, neg


def loop_mask_local_global(local, graph, batch, masks=None, tau_plus: float = 0.0, beta: float = 0.0):
    """The released ``JSD_hard`` arithmetic on the whole (n, g) matrix with node-by-node masks.

    Positive entries are zeroed, not dropped; ``tau_plus = beta = 0`` is InfoGraph's JSD objective.
    """
    n, g = local.shape[0], graph.shape[0]
    pos_mask, neg_mask = masks if masks is not None else loop_masks(batch, g, local.dtype)
    res = local @ graph.T
    p, q = res * pos_mask, res * neg_mask
    log2 = math.log(2.0)
    e_pos = log2 - F.softplus(-p) - (tau_plus / (1 - tau_plus)) * (F.softplus(-p) + p)
    if beta == 0:
        e_neg = (F.softplus(-q) + q - log2) / (1 - tau_plus)
    else:
        scale = torch.maximum(q.max(), q.min().abs())
        weight = (beta * (-2 * q / scale)).exp()
        weight = weight / weight.mean(dim=1).view(-1, 1)
        e_neg = weight * (F.softplus(-q) + q) / (1 - tau_plus) - log2
    return e_neg.sum() / (n * (g - 1)) - e_pos.sum() / n



def released_convs(model: InfoGraph) -> list:
    """PyG ``GINConv`` layers around the model's own MLPs (whose weights GINConv re-initialises, so restored)."""
    from torch_geometric.nn import GINConv

    weights = {k: v.clone() for k, v in model.state_dict().items()}
    convs = [GINConv(mlp) for mlp in model.encoder.mlps]
    model.load_state_dict(weights)
    return convs


def released_forward(model: InfoGraph, convs: list, data) -> tuple[torch.Tensor, torch.Tensor]:
    """The released model's forward with our weights: PyG ``GINConv`` layers, batch norm, sum readout."""
    from torch_geometric.nn import global_add_pool

    x, per_layer = data.x, []
    for conv, norm in zip(convs, model.encoder.norms, strict=True):
        x = norm(F.relu(conv(x, data.edge_index)))
        per_layer.append(x)
    nodes = torch.cat(per_layer, dim=1)
    graphs = global_add_pool(nodes, data.batch, size=data.num_graphs)
    return model.local_head(nodes), model.global_head(graphs)


def released_epoch(model, convs, optimizer, graphs, batch_size) -> tuple[float, float]:
    """(seconds for the epoch, of which building masks)."""
    from torch_geometric.loader import DataLoader

    start, mask_seconds = time.perf_counter(), 0.0
    for data in DataLoader(graphs, batch_size=batch_size):
        optimizer.zero_grad()
        local, graph = released_forward(model, convs, data)
        mask_start = time.perf_counter()
        masks = loop_masks(data.batch, data.num_graphs)
        mask_seconds += time.perf_counter() - mask_start
        loop_mask_local_global(local, graph, data.batch, masks).backward()
        optimizer.step()
    return time.perf_counter() - start, mask_seconds
