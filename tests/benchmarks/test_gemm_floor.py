import torch

from benchmarks.gemm_floor import record_gemms, replay_seconds


def test_records_forward_and_backward_gemms_with_their_flops():
    torch.manual_seed(0)
    layer = torch.nn.Linear(7, 5)
    x = torch.randn(11, 7, requires_grad=True)
    gemms = record_gemms(lambda: layer(x).sum().backward())
    # forward addmm, then the input and weight gradients: each 2*11*7*5 flops
    assert [g.op for g in gemms].count(torch.ops.aten.addmm.default) == 1
    assert len(gemms) == 3
    assert [g.flops for g in gemms] == [2 * 11 * 7 * 5] * 3


def test_batched_matmul_counts_the_batch_and_replays_with_recorded_layouts():
    a, b = torch.randn(4, 3, 6), torch.randn(4, 8, 6).transpose(1, 2)  # b is a transposed view
    gemms = record_gemms(lambda: torch.bmm(a, b))
    assert len(gemms) == 1 and gemms[0].flops == 2 * 4 * 3 * 6 * 8
    inputs = gemms[0].inputs()
    assert [t.stride() for t in inputs] == [a.stride(), b.stride()]
    assert gemms[0].op(*inputs).shape == (4, 3, 8)
    assert replay_seconds(gemms, rounds=2) > 0


def test_sparse_products_are_not_counted_as_dense_gemms():
    from graph.sparse import SparseMatrix

    matrix = SparseMatrix.neighbours(torch.tensor([[0, 1, 2], [1, 2, 0]]), 3)
    dense = torch.randn(3, 4, requires_grad=True)
    gemms = record_gemms(lambda: (matrix @ dense @ torch.randn(4, 5)).sum().backward())
    assert [g.flops for g in gemms] == [2 * 3 * 4 * 5] * 2  # the dense product and its input gradient only
