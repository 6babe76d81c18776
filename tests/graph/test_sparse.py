"""The sparse neighbour sum: equal to a loop over edges, to PyG's GINConv, and in its gradient."""

import pytest
import torch
from torch_geometric.data import Data

from graph.sparse import SparseMatrix


def _directed_multigraph(num_nodes: int = 7, num_edges: int = 20, seed: int = 0) -> torch.Tensor:
    """Random directed edges with repeats and self-loops, so no symmetry hides a transposition bug."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(num_nodes, (2, num_edges), generator=generator)


def test_neighbour_sum_equals_a_loop_over_edges_and_its_gradient_the_transpose():
    edge_index, n = _directed_multigraph(), 7
    x = torch.randn(n, 3, dtype=torch.float64)
    expected = torch.zeros(n, 3, dtype=torch.float64)
    for source, target in edge_index.T.tolist():
        expected[target] += x[source]
    matrix = SparseMatrix(edge_index[1], edge_index[0], (n, n), torch.ones(edge_index.shape[1], dtype=torch.float64))
    torch.testing.assert_close(matrix @ x, expected, rtol=0, atol=1e-12)

    x.requires_grad_(True)
    grad = torch.randn(n, 3, dtype=torch.float64)
    (matrix @ x).backward(grad)
    dense = torch.zeros(n, n, dtype=torch.float64).index_put_(tuple(edge_index.flip(0)), torch.ones(20, dtype=torch.float64), accumulate=True)
    torch.testing.assert_close(x.grad, dense.T @ grad, rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(lambda v: matrix @ v, (torch.randn(n, 2, dtype=torch.float64, requires_grad=True),))


def test_gin_layer_equals_pyg_ginconv_with_the_same_weights():
    """Our encoder's layer ``mlp(x + A x)`` is the released GINConv (eps = 0), forward and backward."""
    from torch_geometric.nn import GINConv

    edge_index, n = _directed_multigraph(num_nodes=9, num_edges=30, seed=1), 9
    mlp = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8))
    x = torch.randn(n, 4, requires_grad=True)
    reference = GINConv(mlp)(x, edge_index)
    (grad_reference,) = torch.autograd.grad(reference.square().sum(), x)
    ours = mlp(x + SparseMatrix.neighbours(edge_index, n) @ x)
    (grad_ours,) = torch.autograd.grad(ours.square().sum(), x)
    torch.testing.assert_close(ours, reference, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grad_ours, grad_reference, rtol=1e-5, atol=1e-5)


def test_shape_mismatch_is_a_clear_error():
    matrix = SparseMatrix.neighbours(_directed_multigraph(), 7)
    with pytest.raises(ValueError, match=r"\(7, 7\) matrix by \(6, 2\)"):
        matrix @ torch.randn(6, 2)


def test_the_benchmarks_released_forward_equals_our_model():
    """``make bench-graph`` times the released PyG layers against ours: they must compute the same thing."""
    from benchmarks.released import released_convs, released_forward
    from graph.data import collate
    from graph.model import InfoGraph

    graphs = []
    for seed in range(3):
        edge_index = _directed_multigraph(num_nodes=6, num_edges=12, seed=seed)
        graphs.append(Data(x=torch.randn(6, 4), edge_index=edge_index))
    batch = collate(graphs)
    torch.manual_seed(0)
    model = InfoGraph(4, hidden=8, layers=3)
    ours = model(batch.x, batch.neighbours, batch.batch, batch.num_graphs)
    released = released_forward(model, released_convs(model), batch)
    for a, b in zip(ours, released, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_a_batch_without_edges_sums_to_zero():
    """Graphs of isolated nodes (nnz = 0) must not break the product or its gradient."""
    matrix = SparseMatrix.neighbours(torch.zeros(2, 0, dtype=torch.long), 4)
    x = torch.randn(4, 3, requires_grad=True)
    (matrix @ x).sum().backward()
    assert torch.equal(matrix @ x.detach(), torch.zeros(4, 3)) and torch.equal(x.grad, torch.zeros(4, 3))
