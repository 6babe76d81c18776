"""InfoGraph model: a GIN encoder with per-layer sum readouts and two discriminator heads.

Sizes follow the released code: 3 GIN layers of width 32, each an MLP Linear-ReLU-Linear
followed by ReLU and batch norm; the graph embedding concatenates the sum-pooled
outputs of every layer, the node embedding concatenates the layers' node outputs.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graph.sparse import SparseMatrix


class GINEncoder(nn.Module):
    """GIN layers ``x <- BN(ReLU(MLP(x + A x)))`` (PyG's ``GINConv`` with eps = 0, as released)."""

    def __init__(self, in_features: int, hidden: int = 32, layers: int = 3) -> None:
        super().__init__()

        def mlp(d_in: int) -> nn.Sequential:
            return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden))

        self.mlps = nn.ModuleList(mlp(in_features if i == 0 else hidden) for i in range(layers))
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(layers))
        self.out_features = hidden * layers

    def forward(
        self, x: Tensor, neighbours: SparseMatrix, batch: Tensor, num_graphs: int, rows: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Returns (graph embeddings ``(G, hidden*layers)``, node embeddings ``(n, hidden*layers)``).

        ``neighbours @ h`` sums each node's in-neighbours (:class:`graph.sparse.SparseMatrix`,
        built once per batch); ``batch[i]`` is node i's graph. With ``rows``, only those nodes'
        embeddings are returned (pooling still sums every node), and the full ``(n, hidden*layers)``
        concatenation is never built.
        """
        from torch_geometric.nn import global_add_pool

        per_layer = []
        for mlp, norm in zip(self.mlps, self.norms, strict=True):
            x = norm(F.relu(mlp(x + neighbours @ x)))
            if x.requires_grad:  # its gradient can arrive as a column slice of the concatenation below,
                x.register_hook(torch.Tensor.contiguous)  # and batch-norm backward is several times slower on strided input
            per_layer.append(x)
        graphs = torch.cat([global_add_pool(h, batch, size=num_graphs) for h in per_layer], dim=1)
        return graphs, torch.cat(per_layer if rows is None else [h.index_select(0, rows) for h in per_layer], dim=1)


class Discriminator(nn.Module):
    """Three-layer ReLU MLP with a linear shortcut (InfoGraph's local/global heads)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.block = nn.Sequential(*(m for _ in range(3) for m in (nn.Linear(dim, dim), nn.ReLU())))
        self.shortcut = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x) + self.shortcut(x)


class InfoGraph(nn.Module):
    def __init__(self, in_features: int, hidden: int = 32, layers: int = 3) -> None:
        super().__init__()
        self.encoder = GINEncoder(in_features, hidden, layers)
        self.local_head = Discriminator(self.encoder.out_features)
        self.global_head = Discriminator(self.encoder.out_features)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform weights and zero biases for every linear layer, as released."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(
        self, x: Tensor, neighbours: SparseMatrix, batch: Tensor, num_graphs: int, rows: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """(node scores input ``(n, D)``, graph scores input ``(G, D)``) for the local-global loss.

        With ``rows``, the local head sees only those nodes (one per class of nodes with equal
        embeddings, :func:`graph.wl.distinct_rows`); the encoder still runs on every node.
        Tensors and operators rather than a PyG ``Batch``, so that ``torch.compile`` can trace it.
        """
        graphs, nodes = self.encoder(x, neighbours, batch, num_graphs, rows)
        return self.local_head(nodes), self.global_head(graphs)

    @torch.no_grad()
    def embed(self, batches: list) -> tuple[np.ndarray, np.ndarray]:
        """Graph embeddings and labels of all ``batches`` in eval mode (batch-norm running stats)."""
        was_training = self.training
        self.eval()
        embeddings = [self.encoder(b.x, b.neighbours, b.batch, b.num_graphs)[0] for b in batches]
        self.train(was_training)
        labels = torch.cat([b.y for b in batches])
        return torch.cat(embeddings).cpu().double().numpy(), labels.cpu().numpy()
