"""The contrastive loss core against a float64 transcription of the published formula."""

import math
import random

import pytest
import torch
import torch.nn.functional as F

from common.losses import HardNegativeLoss, annealed_beta, hcl_loss, masked_hcl_loss


def oracle_pair_loss(anchor, positive, negatives, t, tau_plus, beta):
    """One (anchor, positive) term, straight from the formula with plain Python loops."""
    a = anchor / anchor.norm()
    s_pos = float(a @ (positive / positive.norm()))
    s_neg = [float(a @ (n / n.norm())) for n in negatives]
    n = len(s_neg)
    weights = [math.exp(beta * s / t) for s in s_neg]
    expected = sum(w * math.exp(s / t) for w, s in zip(weights, s_neg, strict=True)) / sum(weights)
    ng = (n * expected - tau_plus * n * math.exp(s_pos / t)) / (1 - tau_plus)
    ng = max(ng, n * math.exp(-1 / t))
    # -log(e^a / (e^a + ng)) written as log1p(ng e^-a), which keeps its digits when the loss is tiny.
    return math.log1p(ng * math.exp(-s_pos / t))


def oracle_two_view(z1, z2, t, tau_plus, beta):
    views = torch.cat([z1, z2])
    b = z1.shape[0]
    total = 0.0
    for i in range(2 * b):
        partner = (i + b) % (2 * b)
        negatives = [views[j] for j in range(2 * b) if j not in (i, partner)]
        total += oracle_pair_loss(views[i], views[partner], negatives, t, tau_plus, beta)
    return total / (2 * b)


def random_cases(count, seed=0):
    rng = random.Random(seed)
    for _ in range(count):
        yield (
            rng.randint(2, 12),
            rng.randint(2, 16),
            rng.uniform(0.05, 1.0),
            rng.choice([0.0, rng.uniform(0.0, 0.5)]),
            rng.choice([0.0, rng.uniform(0.0, 10.0)]),
        )


@pytest.mark.parametrize("case", list(random_cases(40)) + list(random_cases(40, seed=123)))
def test_two_view_loss_matches_float64_oracle(case):
    batch, dim, t, tau_plus, beta = case
    g = torch.Generator().manual_seed(hash(case) % 2**31)
    z1 = torch.randn(batch, dim, dtype=torch.float64, generator=g)
    z2 = z1 + 0.5 * torch.randn(batch, dim, dtype=torch.float64, generator=g)
    got = hcl_loss(z1, z2, temperature=t, tau_plus=tau_plus, beta=beta).item()
    want = oracle_two_view(z1, z2, t, tau_plus, beta)
    assert got == pytest.approx(want, rel=1e-6)


def test_clamp_branch_is_exercised_and_exact():
    # Positive far more similar than negatives and a large tau_plus: the debiased sum goes
    # negative and the floor N e^{-1/t} must take over.
    z1 = torch.eye(4, dtype=torch.float64)
    z2 = z1.clone()
    got = hcl_loss(z1, z2, temperature=0.2, tau_plus=0.9, beta=0.0).item()
    n = 6
    floor = n * math.exp(-1 / 0.2)
    assert got == pytest.approx(-math.log(math.exp(5) / (math.exp(5) + floor)), rel=1e-12)
    assert got == pytest.approx(oracle_two_view(z1, z2, 0.2, 0.9, 0.0), rel=1e-12)


def test_nt_xent_equals_cross_entropy_and_debiased_is_beta_zero():
    torch.manual_seed(1)
    z1, z2 = torch.randn(16, 8, dtype=torch.float64), torch.randn(16, 8, dtype=torch.float64)
    views = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = (views @ views.T / 0.3).fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(16, 32), torch.arange(16)])
    expected = F.cross_entropy(logits, targets).item()
    assert hcl_loss(z1, z2, temperature=0.3, tau_plus=0.0, beta=0.0).item() == pytest.approx(expected, rel=1e-12)
    debiased = hcl_loss(z1, z2, temperature=0.3, tau_plus=0.2, beta=0.0).item()
    assert debiased == pytest.approx(oracle_two_view(z1, z2, 0.3, 0.2, 0.0), rel=1e-9)
    assert debiased != pytest.approx(expected, rel=1e-3)


def test_masked_form_with_two_positives_matches_oracle():
    torch.manual_seed(2)
    n, t, tau_plus, beta = 7, 0.4, 0.1, 2.0
    anchors = torch.randn(n, 5, dtype=torch.float64)
    candidates = torch.randn(n, 5, dtype=torch.float64)
    index = torch.arange(n)
    pos = (index[:, None] - index[None, :]).abs() == 1  # neighbours i-1, i+1
    neg = ~pos & (index[:, None] != index[None, :])
    got = masked_hcl_loss(anchors, candidates, pos, neg, temperature=t, tau_plus=tau_plus, beta=beta).item()
    per_anchor = []
    for i in range(n):
        negatives = [candidates[j] for j in range(n) if neg[i, j]]
        terms = [oracle_pair_loss(anchors[i], candidates[j], negatives, t, tau_plus, beta) for j in range(n) if pos[i, j]]
        per_anchor.append(sum(terms) / len(terms))
    assert got == pytest.approx(sum(per_anchor) / n, rel=1e-9)


def test_masked_form_reduces_to_two_view_form():
    torch.manual_seed(3)
    z1, z2 = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    views = torch.cat([z1, z2])
    index = torch.arange(12)
    pos = index[None, :] == ((index + 6) % 12)[:, None]
    neg = ~pos & ~torch.eye(12, dtype=torch.bool)
    a = masked_hcl_loss(views, views, pos, neg, temperature=0.5, tau_plus=0.1, beta=1.0)
    b = hcl_loss(z1, z2, temperature=0.5, tau_plus=0.1, beta=1.0)
    assert a.item() == pytest.approx(b.item(), rel=1e-12)


@pytest.mark.parametrize("tau_plus,beta,detach", [(0.0, 0.0, False), (0.1, 0.0, False), (0.1, 1.5, False), (0.3, 4.0, True)])
def test_gradcheck_two_view(tau_plus, beta, detach):
    torch.manual_seed(4)
    z1 = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)

    def fn(a, b):
        return hcl_loss(a, b, temperature=0.5, tau_plus=tau_plus, beta=beta, detach_weights=detach)

    if detach:
        # Frozen weights: compare with the estimator whose weights come from detached similarities.
        fn(z1, z2).backward()
        got = (z1.grad.clone(), z2.grad.clone())
        z1.grad = z2.grad = None
        _frozen_weight_loss(z1, z2, 0.5, tau_plus, beta).backward()
        assert torch.allclose(got[0], z1.grad, rtol=1e-9, atol=1e-12)
        assert torch.allclose(got[1], z2.grad, rtol=1e-9, atol=1e-12)
    else:
        assert torch.autograd.gradcheck(fn, (z1, z2))


def _frozen_weight_loss(z1, z2, t, tau_plus, beta):
    """Published estimator with importance weights computed from detached similarities."""
    views = F.normalize(torch.cat([z1, z2]), dim=1)
    b = z1.shape[0]
    sim = views @ views.T / t
    index = torch.arange(2 * b)
    partner = (index + b) % (2 * b)
    neg = (index[None, :] != index[:, None]) & (index[None, :] != partner[:, None])
    s_neg = sim[neg].view(2 * b, -1)
    w = torch.softmax(beta * s_neg.detach(), dim=1)
    n = 2 * b - 2
    pos = sim[index, partner]
    ng = (n * (w * s_neg.exp()).sum(1) - tau_plus * n * pos.exp()) / (1 - tau_plus)
    ng = ng.clamp_min(n * math.exp(-1 / t))
    return -(pos.exp() / (pos.exp() + ng)).log().mean()


def test_gradcheck_masked_form():
    torch.manual_seed(5)
    anchors = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    candidates = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    pos = torch.zeros(4, 6, dtype=torch.bool)
    pos[torch.arange(4), torch.arange(4)] = True
    pos[0, 5] = True
    neg = ~pos

    def fn(a, c):
        return masked_hcl_loss(a, c, pos, neg, temperature=0.7, tau_plus=0.2, beta=3.0)

    assert torch.autograd.gradcheck(fn, (anchors, candidates))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_stay_finite_at_small_temperature(dtype):
    torch.manual_seed(6)
    z1 = torch.randn(64, 32).to(dtype).requires_grad_()
    z2 = (z1.detach() + 0.1 * torch.randn(64, 32).to(dtype)).requires_grad_()
    loss = hcl_loss(z1, z2, temperature=0.05, tau_plus=0.1, beta=2.0)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(z1.grad).all() and torch.isfinite(z2.grad).all()
    assert z1.grad.dtype == dtype
    full = hcl_loss(z1.detach().float(), z2.detach().float(), temperature=0.05, tau_plus=0.1, beta=2.0)
    assert loss.item() == pytest.approx(full.item(), rel=1e-6)


def test_large_beta_and_tiny_temperature_stay_finite_in_float32():
    # The raw-exp published form overflows here (e^{(1+beta)/t} = e^{220}); log space does not.
    torch.manual_seed(7)
    z1 = torch.randn(32, 16, requires_grad=True)
    z2 = torch.randn(32, 16)
    loss = hcl_loss(z1, z2, temperature=0.05, tau_plus=0.1, beta=10.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z1.grad).all()
    want = oracle_two_view(z1.detach().double(), z2.double(), 0.05, 0.1, 10.0)
    assert loss.item() == pytest.approx(want, rel=1e-5)


def test_nan_input_gives_nan_loss_not_a_silent_number():
    z1 = torch.randn(4, 3)
    z1[1, 0] = float("nan")
    assert torch.isnan(hcl_loss(z1, torch.randn(4, 3)))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"tau_plus": 1.0}, "tau_plus"),
        ({"tau_plus": -0.1}, "tau_plus"),
        ({"beta": -1.0}, "beta"),
        ({"beta": float("inf")}, "beta"),
        ({"beta": 1e308}, "beta"),
    ],
)
def test_bad_hyper_parameters_raise_named_errors(kwargs, match):
    # The module is validated against the registry's ranges of `hard` (one layer); the function checks the temperature.
    with pytest.raises(ValueError, match=match):
        HardNegativeLoss(**kwargs)
    if "temperature" in kwargs:
        z = torch.randn(4, 3)
        with pytest.raises(ValueError, match=match):
            hcl_loss(z, z, **kwargs)
        with pytest.raises(ValueError, match=match):
            masked_hcl_loss(z, z, torch.eye(4, dtype=torch.bool), ~torch.eye(4, dtype=torch.bool), **kwargs)


def test_shape_errors_and_batch_of_one():
    with pytest.raises(ValueError, match="at least 2 samples"):
        hcl_loss(torch.randn(1, 3), torch.randn(1, 3))
    with pytest.raises(ValueError, match="same shape"):
        hcl_loss(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match=r"\(batch, dim\)"):
        hcl_loss(torch.randn(4), torch.randn(4))
    a = torch.randn(3, 2)
    eye = torch.eye(3, dtype=torch.bool)
    with pytest.raises(ValueError, match="overlap"):
        masked_hcl_loss(a, a, eye, eye)
    with pytest.raises(ValueError, match="at least one negative"):
        masked_hcl_loss(a, a, eye, torch.zeros(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool tensor"):
        masked_hcl_loss(a, a, eye.float(), ~eye)
    with pytest.raises(ValueError, match="gather_distributed"):
        HardNegativeLoss(gather_distributed=True)


def test_module_matches_function_and_beta_can_change():
    torch.manual_seed(8)
    z1, z2 = torch.randn(8, 4), torch.randn(8, 4)
    module = HardNegativeLoss(temperature=0.5, tau_plus=0.1, beta=1.0)
    assert module(z1, z2).item() == hcl_loss(z1, z2, temperature=0.5, tau_plus=0.1, beta=1.0).item()
    module.beta = 0.0
    assert module(z1, z2).item() == hcl_loss(z1, z2, temperature=0.5, tau_plus=0.1, beta=0.0).item()


def test_annealing_follows_released_schedule():
    # Released code: betas = iter(linspace(beta, 0, 9)); after every epochs//9 epochs, beta = next(betas).
    epochs, beta0 = 400, 2.0
    schedule = iter([beta0 * (1 - k / 8) for k in range(9)])
    beta, expected = beta0, []
    for epoch in range(1, epochs + 1):
        expected.append(beta)
        if epoch % (epochs // 9) == 0:
            beta = next(schedule)
    got = [annealed_beta(beta0, e, epochs) for e in range(1, epochs + 1)]
    assert got == pytest.approx(expected)
    assert got[0] == beta0 and got[-1] == 0.0
