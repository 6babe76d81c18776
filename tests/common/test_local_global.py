"""InfoGraph local-global objective: both conventions against direct loop transcriptions.

The released arithmetic is transcribed once, in ``benchmarks.released`` (``benchmarks.loss_speed`` times it).
"""

import math

import pytest
import torch
import torch.nn.functional as F

from benchmarks.released import loop_mask_local_global
from common.local_global import local_global_loss
from common.objectives import parse_objective

LOG2 = math.log(2.0)


def paper_formula(local, graph, batch, tau_plus, beta):
    """The paper convention written per node with explicit loops."""
    total = 0.0
    scores = local @ graph.T
    neg_abs = [abs(float(scores[i, j])) for i in range(len(batch)) for j in range(graph.shape[0]) if j != batch[i]]
    scale = max(neg_abs)
    for i, own in enumerate(batch.tolist()):
        p = float(scores[i, own])
        qs = [float(scores[i, j]) for j in range(graph.shape[0]) if j != own]
        ws = [math.exp(beta * q / scale) for q in qs]
        softplus = [math.log1p(math.exp(q)) for q in qs]
        expected = sum(w * s for w, s in zip(ws, softplus, strict=True)) / sum(ws)
        debiased = max(0.0, (expected - tau_plus * math.log1p(math.exp(p))) / (1 - tau_plus))
        total += math.log1p(math.exp(-p)) + debiased
    return total / len(batch) - 2 * LOG2


def toy_batch(seed, nodes=30, graphs=5, dim=6):
    g = torch.Generator().manual_seed(seed)
    batch = torch.sort(torch.randint(0, graphs, (nodes,), generator=g)).values
    batch[:graphs] = torch.arange(graphs)  # every graph has a node
    batch = torch.sort(batch).values
    local = torch.randn(nodes, dim, dtype=torch.float64, generator=g)
    graph = torch.randn(graphs, dim, dtype=torch.float64, generator=g)
    return local, graph, batch


@pytest.mark.parametrize("tau_plus,beta", [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.5, 10.0), (0.2, 2.0)])
def test_reference_equals_released_formula(tau_plus, beta):
    local, graph, batch = toy_batch(0)
    got = local_global_loss(local, graph, batch, tau_plus=tau_plus, beta=beta, convention="reference")
    want = loop_mask_local_global(local, graph, batch, tau_plus=tau_plus, beta=beta)
    assert got.item() == pytest.approx(want.item(), rel=1e-10)


@pytest.mark.parametrize("tau_plus,beta", [(0.0, 0.0), (0.5, 0.0), (0.5, 2.0)])
def test_reference_gradient_equals_released_formula(tau_plus, beta):
    """The row-sum rewrite must train like the released arithmetic: same gradients, scale included."""
    local, graph, batch = toy_batch(2)
    grads = []
    for fn in (lambda a, b: local_global_loss(a, b, batch, tau_plus=tau_plus, beta=beta, convention="reference"),
               lambda a, b: loop_mask_local_global(a, b, batch, tau_plus=tau_plus, beta=beta)):
        a, b = local.clone().requires_grad_(), graph.clone().requires_grad_()
        grads.append(torch.autograd.grad(fn(a, b), (a, b)))
    for got, want in zip(*grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("tau_plus,beta", [(0.0, 0.0), (0.5, 0.0), (0.1, 1.0), (0.5, 10.0)])
def test_paper_equals_loop_formula(tau_plus, beta):
    local, graph, batch = toy_batch(1)
    got = local_global_loss(local, graph, batch, tau_plus=tau_plus, beta=beta, convention="paper")
    assert got.item() == pytest.approx(paper_formula(local, graph, batch, tau_plus, beta), rel=1e-10)


@pytest.mark.parametrize("tau_plus,beta", [(0.0, 0.0), (0.5, 0.0), (0.0, 1.0), (0.5, 2.0)])
def test_paper_gradient_equals_a_row_by_row_autograd_transcription(tau_plus, beta):
    """Gradients of the paper convention against rows written out one by one (the weight scale held constant)."""
    local, graph, batch = toy_batch(3)

    def rows(a, b):
        scores = a @ b.T
        others = [[j for j in range(b.shape[0]) if j != own] for own in batch.tolist()]
        scale = max(float(scores[i, js].detach().abs().max()) for i, js in enumerate(others))
        total = 0.0
        for i, own in enumerate(batch.tolist()):
            p, q = scores[i, own], scores[i, others[i]]
            expected = (torch.softmax(beta * q / scale, dim=0) * F.softplus(q)).sum()
            total = total + F.softplus(-p) + ((expected - tau_plus * F.softplus(p)) / (1 - tau_plus)).clamp_min(0.0)
        return total / len(batch) - 2 * LOG2

    grads = []
    for fn in (lambda a, b: local_global_loss(a, b, batch, tau_plus=tau_plus, beta=beta), rows):
        a, b = local.clone().requires_grad_(), graph.clone().requires_grad_()
        grads.append(torch.autograd.grad(fn(a, b), (a, b)))
    for got, want in zip(*grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_conventions_agree_on_plain_infograph_and_differ_with_hard_weights():
    local, graph, batch = toy_batch(2)
    plain = [local_global_loss(local, graph, batch, convention=c).item() for c in ("paper", "reference")]
    assert plain[0] == pytest.approx(plain[1], rel=1e-12)
    hard = [local_global_loss(local, graph, batch, tau_plus=0.5, beta=2.0, convention=c).item() for c in ("paper", "reference")]
    assert abs(hard[0] - hard[1]) > 1e-3


def test_paper_weights_favour_hard_negatives_and_reference_favours_easy_ones():
    # The gradient of a node's loss pushes hardest on its highest-scoring negative under
    # `paper` weights and on its lowest-scoring one under the released `reference` weights.
    local = torch.tensor([[1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    graph = torch.tensor([[1.0, 0.0], [2.0, 0.0], [-2.0, 0.0]], dtype=torch.float64, requires_grad=True)
    batch = torch.tensor([0])
    for convention, hardest in (("paper", 1), ("reference", 2)):
        graph.grad = None
        local_global_loss(local, graph, batch, beta=5.0, convention=convention).backward()
        pull = graph.grad[1:, 0].abs()
        assert int(pull.argmax()) + 1 == hardest, convention


def test_gradients_finite_and_errors():
    local, graph, batch = toy_batch(3)
    local.requires_grad_()
    local_global_loss(local, graph, batch, tau_plus=0.5, beta=10.0).backward()
    assert torch.isfinite(local.grad).all()
    with pytest.raises(ValueError, match="at least 2 graphs"):
        local_global_loss(local, graph[:1], torch.zeros(len(batch), dtype=torch.long))
    # Parameters are validated once, by the registry's ranges of the jsd family.
    for spec, match in (("jsd:convention=other", "convention"), ("jsd:tau_plus=1", "tau_plus"), ("jsd:beta=-1", "beta")):
        with pytest.raises(ValueError, match=match):
            parse_objective(spec)


@pytest.mark.parametrize("convention", ["paper", "reference"])
@pytest.mark.parametrize("tau_plus,beta", [(0.0, 0.0), (0.5, 0.0), (0.5, 2.0)])
def test_counted_rows_equal_the_rows_repeated(convention, tau_plus, beta):
    """A row standing for k nodes gives the loss, and the gradients, of k equal rows."""
    local, graph, batch = toy_batch(4, nodes=12)
    counts = torch.randint(1, 5, (len(batch),), generator=torch.Generator().manual_seed(0))
    hparams = dict(tau_plus=tau_plus, beta=beta, convention=convention)
    grads = []
    for repeat in (True, False):
        a, b = local.clone().requires_grad_(), graph.clone().requires_grad_()
        if repeat:
            value = local_global_loss(a.repeat_interleave(counts, 0), b, batch.repeat_interleave(counts), **hparams)
        else:
            value = local_global_loss(a, b, batch, counts=counts, **hparams)
        grads.append((value, *torch.autograd.grad(value, (a, b))))
    for got, want in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_counts_of_the_wrong_shape_are_an_error():
    local, graph, batch = toy_batch(4, nodes=12)
    with pytest.raises(ValueError, match="counts"):
        local_global_loss(local, graph, batch, counts=torch.ones(len(batch) - 1, dtype=torch.long))
