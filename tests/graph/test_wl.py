"""Colour refinement: exact classes, equal embeddings within a class, and the same training signal."""

import pytest
import torch
from torch_geometric.data import Data

from common.objectives import make_objective
from graph.data import GraphData
from graph.model import InfoGraph
from graph.train import step_loss
from graph.wl import distinct_rows, wl_colours


def loop_refinement(x: torch.Tensor, edge_index: torch.Tensor, rounds: int) -> list[int]:
    """Textbook refinement: a node's new colour is (its colour, sorted in-neighbour colours), node by node."""
    seen: dict = {}
    colours = [seen.setdefault(tuple(row), len(seen)) for row in x.tolist()]
    sources: list[list[int]] = [[] for _ in colours]
    for source, target in edge_index.t().tolist():
        sources[target].append(source)
    for _ in range(rounds):
        seen = {}
        colours = [seen.setdefault((c, tuple(sorted(colours[u] for u in sources[v]))), len(seen))
                   for v, c in enumerate(colours)]
    return colours


def partition(colours) -> set[frozenset[int]]:
    classes: dict = {}
    for node, colour in enumerate(list(colours)):
        classes.setdefault(int(colour), set()).add(node)
    return {frozenset(c) for c in classes.values()}


def test_colours_equal_a_loop_refinement_on_random_multigraphs():
    g = torch.Generator().manual_seed(0)
    for _ in range(100):
        n, e = int(torch.randint(1, 30, (1,), generator=g)), int(torch.randint(0, 60, (1,), generator=g))
        x = torch.randint(0, 2, (n, 2), generator=g).float()
        edge_index = torch.randint(0, n, (2, e), generator=g)  # directed, with repeats and self-loops
        for rounds in range(4):
            assert partition(wl_colours(x, edge_index, rounds)) == partition(loop_refinement(x, edge_index, rounds))


def star_and_path_graphs() -> list[Data]:
    """Stars (all leaves alike), paths (ends alike) and one featureless-looking pair that differs by a feature."""
    def undirected(pairs, n, x=None):
        edges = torch.tensor(pairs + [(b, a) for a, b in pairs]).t()
        return Data(x=torch.ones(n, 1) if x is None else x, edge_index=edges, num_nodes=n)

    star = undirected([(0, j) for j in range(1, 7)], 7)
    path = undirected([(j, j + 1) for j in range(5)], 6)
    marked = undirected([(0, 1), (1, 2)], 3, x=torch.tensor([[1.0], [1.0], [2.0]]))
    return [star, path, star, marked]


def distinct_batch():
    graphs = star_and_path_graphs()
    data = GraphData("TOY", graphs, torch.zeros(len(graphs)), 1)
    batch = data.batches(len(graphs), seed=0, distinct_depth=3)[0]  # colours of the whole set, sliced per batch
    rows, counts = distinct_rows(wl_colours(batch.x, batch.edge_index, 3), batch.batch)  # or of the batch alone
    def pairs(rows, counts):
        return sorted(zip(rows.tolist(), counts.tolist(), strict=True))

    assert pairs(rows, counts) == pairs(batch.rows, batch.row_counts)
    return batch


def test_distinct_rows_merge_only_within_a_graph():
    batch = distinct_batch()
    rows, counts = batch.rows, batch.row_counts
    assert int(counts.sum()) == batch.num_nodes
    # star: hub + 6 leaves -> 2 rows; path of 6: three mirror pairs -> 3; the second star -> 2; marked path: 3 distinct
    assert len(rows) == 2 + 3 + 2 + 3
    assert sorted(counts.tolist()) == [1, 1, 1, 1, 1, 2, 2, 2, 6, 6]


def test_nodes_of_one_class_get_equal_embeddings():
    batch = distinct_batch()
    torch.manual_seed(0)
    model = InfoGraph(1, hidden=8, layers=3).double()  # training mode: batch statistics couple all nodes
    _, nodes = model.encoder(batch.x.double(), _double(batch.neighbours), batch.batch, batch.num_graphs)
    colours = wl_colours(batch.x, batch.edge_index, 3)
    for colour in colours.unique():
        members = nodes[colours == colour]
        torch.testing.assert_close(members, members[:1].expand_as(members), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("hparams", [dict(), dict(tau_plus=0.5), dict(tau_plus=0.5, beta=2.0),
                                     dict(tau_plus=0.5, beta=1.0, convention="reference")])
def test_scoring_distinct_rows_gives_the_loss_and_gradients_of_every_node(hparams):
    batch = distinct_batch()
    torch.manual_seed(0)
    model = InfoGraph(1, hidden=8, layers=3).double()
    step = step_loss(model, make_objective("jsd", **hparams))
    results = []
    for rows, counts in ((None, None), (batch.rows, batch.row_counts)):
        model.zero_grad()
        value = step(batch.x.double(), _double(batch.neighbours), batch.batch, batch.num_graphs, rows, counts)
        value.backward()
        results.append([value.detach()] + [p.grad.clone() for p in model.parameters()])
    scale = max(float(t.abs().max()) for t in results[0])  # some gradients are 0 up to float64 noise (biases before ReLU-BN)
    for got, want in zip(results[1], results[0], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12 * scale)


def _double(matrix):
    from graph.sparse import SparseMatrix

    coo = matrix.matrix.to_sparse_coo()
    return SparseMatrix(coo.indices()[0], coo.indices()[1], matrix.shape, coo.values().double())
