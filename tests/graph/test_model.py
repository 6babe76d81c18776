"""The InfoGraph model on a real batch."""

from __future__ import annotations

import torch

from common.local_global import local_global_loss
from graph.data import load_tu
from graph.model import InfoGraph


def test_model_shapes_and_loss_on_a_real_batch(toy_root):
    data = load_tu("TOY", toy_root)
    batch = data.batches(8, seed=0)[0]
    model = InfoGraph(data.num_features, hidden=16, layers=3)
    local, graph = model(batch.x, batch.neighbours, batch.batch, batch.num_graphs)
    assert local.shape == (batch.num_nodes, 48) and graph.shape == (batch.num_graphs, 48)
    embeddings, labels = model.embed(data.batches(8, seed=0))
    assert embeddings.shape == (24, 48) and labels.shape == (24,)
    loss = local_global_loss(local, graph, batch.batch, tau_plus=0.5, beta=1.0)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
