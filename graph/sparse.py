"""The fixed neighbour-sum operator of a mini-batch, as a sparse matrix.

GIN's aggregation is a product with a constant 0/1 adjacency matrix. The batches are
collated once per run, so the matrix is built once, in CSR together with its transpose,
and every epoch is a sparse-dense product forward and backward. That replaces PyG's
gather-then-scatter, which builds an ``(edges, width)`` temporary and scatters it,
forward and backward (``make bench-graph`` times whole epochs of both).
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor


class _SparseProduct(torch.autograd.Function):
    """``matrix @ dense`` with the gradient ``matrix.T @ grad`` from the stored transpose."""

    @staticmethod
    def forward(ctx, matrix: Tensor, transpose: Tensor, dense: Tensor) -> Tensor:
        ctx.transpose = transpose
        return torch.sparse.mm(matrix, dense)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, None, Tensor]:
        return None, None, torch.sparse.mm(ctx.transpose, grad.contiguous())


class SparseMatrix:
    """A constant ``(rows, cols)`` matrix with ``values`` at ``(row[k], col[k])`` (repeats add up).

    ``m @ dense`` is differentiable in ``dense``. Built once per batch (:meth:`neighbours`).
    """

    def __init__(self, row: Tensor, col: Tensor, shape: tuple[int, int], values: Tensor | None = None) -> None:
        if values is None:
            values = torch.ones(row.numel(), device=row.device)
        self.shape = shape
        self.matrix = self._csr(row, col, values, shape)
        self.transpose = self._csr(col, row, values, (shape[1], shape[0]))

    @staticmethod
    def _csr(row: Tensor, col: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
        with warnings.catch_warnings():  # torch calls its CSR support beta; the products used here are tested
            warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
            indices = torch.stack([row, col])
            return torch.sparse_coo_tensor(indices, values, shape, check_invariants=False).coalesce().to_sparse_csr()

    @classmethod
    def neighbours(cls, edge_index: Tensor, num_nodes: int) -> SparseMatrix:
        """Row i sums the features of the sources of edges into i (PyG's ``aggr="add"``, flow source -> target)."""
        return cls(edge_index[1], edge_index[0], (num_nodes, num_nodes))

    @torch.compiler.disable  # the compilers do not trace sparse tensors; the products run eagerly
    def __matmul__(self, dense: Tensor) -> Tensor:
        if dense.shape[0] != self.shape[1]:
            raise ValueError(f"cannot multiply a {self.shape} matrix by {tuple(dense.shape)}")
        return _SparseProduct.apply(self.matrix, self.transpose, dense)
