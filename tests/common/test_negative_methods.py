"""The field's negative-handling objectives against float64 loop transcriptions of their formulas.

Each oracle is written from the per-anchor formula with plain Python loops over anchors,
positives and negatives (no masks, no tensors in the arithmetic), independently of the
vectorised code. Both input shapes are covered: two augmented views (one positive per anchor)
and quick-thought's neighbours (two positives), with and without row weights. The
transcriptions of each family's reference *code* are in tests/common/test_reference_oracles.py.
"""

import math
import random

import pytest
import torch

from common.decoupled import dcl_loss, dclw_loss
from common.fnc import fnc_loss
from common.hardness import hardness_offset_loss
from common.local_global import infonce_local_global
from common.losses import hcl_loss, masked_hcl_loss
from common.mixing import mixing_draws, mochi_loss
from common.objectives import build, parse_objective
from common.ring import ring_loss
from common.views import two_view_loss, two_view_masks

# ---------------------------------------------------------------- oracles (plain Python)


def _unit(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True))


def _lse(xs):
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs))


def _rows(anchors, candidates, pos, neg, weights):
    """Per contributing anchor: (weight, unit anchor, [(col, cos)] positives, [(col, cos)] negatives)."""
    a_list = [_unit(r) for r in anchors.tolist()]
    c_list = [_unit(r) for r in candidates.tolist()]
    out = []
    for i, a in enumerate(a_list):
        p = [(j, _dot(a, c_list[j])) for j in range(len(c_list)) if pos[i][j]]
        if p:
            n = [(j, _dot(a, c_list[j])) for j in range(len(c_list)) if neg[i][j]]
            out.append((weights[i], a, p, n))
    return out, c_list


def _mean(terms):
    """Weighted mean over anchors of the mean over each anchor's pair losses."""
    return sum(w * sum(ls) / len(ls) for w, ls in terms) / sum(w for w, _ in terms)


def oracle(family, anchors, candidates, pos, neg, weights, t, **p):
    rows, cands = _rows(anchors, candidates, pos, neg, weights)
    terms = []
    if family == "dclw":
        # Mean of e^{s+/sigma} over all positive pairs, each counted as often as its anchor.
        pairs = [(w, s) for w, _, ps, _ in rows for _, s in ps]
        mean = sum(w * math.exp(s / p["sigma"]) for w, s in pairs) / sum(w for w, _ in pairs)
    for w, a, ps, ns in rows:
        sn = [s for _, s in ns]
        if family in ("dcl", "dclw"):
            log_neg = _lse([s / t for s in sn])
            losses = []
            for _, s in ps:
                weight = 2 - math.exp(s / p["sigma"]) / mean if family == "dclw" else 1.0
                losses.append(-weight * s / t + log_neg)
        elif family == "ntxent":
            losses = [-s / t + _lse([s / t] + [x / t for x in sn]) for _, s in ps]
        elif family == "hardness":
            losses = [-s / t + _lse([s / t] + [x / t + p["alpha"] * x for x in sn]) for _, s in ps]
        elif family == "fnc":
            # Support set: the anchor and its positives; a candidate's score is its best cosine to them.
            support = [a] + [cands[j] for j, _ in ps]
            scored = sorted(((max(_dot(v, cands[j]) for v in support), j, x) for j, x in ns), reverse=True)
            n = len(ns)
            k = 0 if p["topk"] == 0 else min(n - 1, max(1, math.floor(p["topk"] * n / 65536 + 0.5)))
            false = [(j, x) for score, j, x in scored[:k] if score > p["threshold"]]
            kept = [(j, x) for j, x in ns if (j, x) not in false]
            if p["mode"] == "elimination":
                losses = [-s / t + _lse([s / t] + [x / t for _, x in kept]) for _, s in ps]
            else:
                everything = [s / t for _, s in ps] + [x / t for x in sn]
                losses = [-s / t + _lse(everything) for _, s in ps + false]
        elif family == "ring":
            ranked = sorted(sn, reverse=True)  # most similar first
            n = len(ranked)
            band = ranked[int((1 - p["upper"]) * n):int((1 - p["lower"]) * n)]
            if not band:
                return None
            losses = [-s / t + _lse([s / t] + [x / t for x in band]) for _, s in ps]
        else:
            raise AssertionError(family)
        terms.append((w, losses))
    return _mean(terms)


def oracle_mochi(anchors, candidates, pos, neg, weights, t, num_hard, num_mix, num_query_mix, seed):
    rows, cands = _rows(anchors, candidates, pos, neg, weights)
    g = torch.Generator().manual_seed(seed)
    first, second, alpha, pick, beta = (x.tolist() for x in
                                        mixing_draws(len(rows), num_hard, num_mix, num_query_mix, g, torch.float64))
    terms = []
    for r, (w, a, ps, ns) in enumerate(rows):
        hardest = [cands[j] for j, _ in sorted(ns, key=lambda c: -c[1])[:num_hard]]
        synthetic = []
        for k in range(num_mix):
            ni, nj, al = hardest[first[r][k]], hardest[second[r][k]], alpha[r][k]
            synthetic.append(_unit([al * x + (1 - al) * y for x, y in zip(ni, nj, strict=True)]))
        for k in range(num_query_mix):
            nj, be = hardest[pick[r][k]], beta[r][k]
            synthetic.append(_unit([be * x + (1 - be) * y for x, y in zip(a, nj, strict=True)]))
        negatives = [s / t for _, s in ns] + [_dot(a, h) / t for h in synthetic]
        terms.append((w, [-s / t + _lse([s / t] + negatives) for _, s in ps]))
    return _mean(terms)


def oracle_hcl(anchors, candidates, pos, neg, weights, t, tau_plus, beta):
    rows, _ = _rows(anchors, candidates, pos, neg, weights)
    terms = []
    for w, _, ps, ns in rows:
        n = len(ns)
        ws = [math.exp(beta * s / t) for _, s in ns]
        expected = sum(x * math.exp(s / t) for x, (_, s) in zip(ws, ns, strict=True)) / sum(ws)
        losses = []
        for _, s in ps:
            ng = max((n * expected - tau_plus * n * math.exp(s / t)) / (1 - tau_plus), n * math.exp(-1 / t))
            losses.append(math.log1p(ng * math.exp(-s / t)))
        terms.append((w, losses))
    return _mean(terms)


# ---------------------------------------------------------------- random cases

FUNCTIONS = {"dcl": dcl_loss, "dclw": dclw_loss, "hardness": hardness_offset_loss, "fnc": fnc_loss,
             "ring": ring_loss, "mochi": mochi_loss}


def _inputs(rng, g):
    """(anchors, candidates, pos, neg, row_weights or None) of a two-view or a two-neighbour case."""
    dim = rng.randint(2, 8)
    if rng.random() < 0.5:
        b = rng.randint(2, 17)
        z = torch.randn(b, dim, dtype=torch.float64, generator=g)
        views = torch.cat([z, z + 0.7 * torch.randn(b, dim, dtype=torch.float64, generator=g)])
        pos, neg = two_view_masks(b, 0, 1, torch.device("cpu"))
        anchors = candidates = views
    else:
        n = rng.randint(4, 17)
        anchors = torch.randn(n, dim, dtype=torch.float64, generator=g)
        candidates = anchors + 0.7 * torch.randn(n, dim, dtype=torch.float64, generator=g)
        index = torch.arange(n)
        pos = (index[:, None] - index[None, :]).abs() == 1
        neg = ~pos & (index[:, None] != index[None, :])
    weights = None if rng.random() < 0.5 else torch.tensor([float(rng.randint(0, 3)) for _ in range(anchors.shape[0])])
    if weights is not None and weights.sum() == 0:
        weights[0] = 1.0
    return anchors, candidates, pos, neg, weights


def _params(family, rng, fewest):
    if family == "dclw":
        return {"sigma": rng.uniform(0.1, 2.0)}
    if family == "hardness":
        return {"alpha": rng.choice([0.0, 9.0, rng.uniform(0.0, 20.0)])}
    if family == "fnc":
        return {"topk": rng.choice([0, 10, rng.randint(1, 65536)]), "threshold": rng.choice([0.7, rng.uniform(-1, 1)]),
                "mode": rng.choice(["elimination", "attraction"])}
    if family == "ring":
        lower = rng.choice([0.0, rng.uniform(0, 1)])
        return {"lower": lower, "upper": rng.choice([1.0, rng.uniform(lower, 1)])}
    if family == "mochi":
        num_hard = rng.randint(1, fewest)
        return {"num_hard": num_hard, "num_mix": 0 if num_hard < 2 else rng.randint(0, 8),
                "num_query_mix": rng.randint(0, 4), "seed": rng.randint(0, 99)}
    return {}


RELATIVE_ERRORS: dict[str, float] = {}


@pytest.mark.parametrize("family", [*FUNCTIONS, "hcl"])
def test_objective_matches_float64_loop_oracle(family):
    rng = random.Random(family)
    g = torch.Generator().manual_seed(len(family))
    worst = 0.0
    for _ in range(60):
        anchors, candidates, pos, neg, weights = _inputs(rng, g)
        t = rng.uniform(0.05, 1.0)
        fewest = int(neg[pos.any(1)].sum(1).min())
        ws = [1.0] * anchors.shape[0] if weights is None else weights.tolist()
        if family == "hcl":
            p = {"tau_plus": rng.choice([0.0, rng.uniform(0, 0.5)]), "beta": rng.choice([0.0, rng.uniform(0, 5)])}
            got = masked_hcl_loss(anchors, candidates, pos, neg, temperature=t, row_weights=weights, **p).item()
            want = oracle_hcl(anchors, candidates, pos.tolist(), neg.tolist(), ws, t, **p)
        else:
            p = _params(family, rng, fewest)
            if family == "mochi":
                want = oracle_mochi(anchors, candidates, pos.tolist(), neg.tolist(), ws, t, **p)
            else:
                want = oracle(family, anchors, candidates, pos.tolist(), neg.tolist(), ws, t, **p)
            if want is None:  # the ring band holds no negative of some anchor
                with pytest.raises(ValueError, match="lower/upper"):
                    ring_loss(anchors, candidates, pos, neg, temperature=t, row_weights=weights, **p)
                continue
            got = FUNCTIONS[family](anchors, candidates, pos, neg, temperature=t, row_weights=weights, **p).item()
        worst = max(worst, abs(got - want) / abs(want))
        assert got == pytest.approx(want, rel=1e-6), (family, p, t)
    RELATIVE_ERRORS[family] = worst
    print(f"max relative error {family}: {worst:.2e}")


# ---------------------------------------------------------------- identities

def _views(b=9, d=5, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    z1 = torch.randn(b, d, dtype=dtype, generator=g)
    return z1, z1 + 0.8 * torch.randn(b, d, dtype=dtype, generator=g)


@pytest.mark.parametrize("t", [0.05, 0.3, 1.0])
def test_edge_parameters_are_nt_xent(t):
    z1, z2 = _views()
    nt = hcl_loss(z1, z2, temperature=t, tau_plus=0.0, beta=0.0).item()
    through_views = two_view_loss(masked_hcl_loss, z1, z2, temperature=t, tau_plus=0.0, beta=0.0).item()
    assert through_views == pytest.approx(nt, rel=1e-12)
    same = [
        two_view_loss(hardness_offset_loss, z1, z2, temperature=t, alpha=0.0),
        two_view_loss(ring_loss, z1, z2, temperature=t, lower=0.0, upper=1.0),
        two_view_loss(fnc_loss, z1, z2, temperature=t, topk=0, mode="elimination"),
        two_view_loss(fnc_loss, z1, z2, temperature=t, topk=0, mode="attraction"),
        two_view_loss(fnc_loss, z1, z2, temperature=t, topk=65536, threshold=1.0),  # no cosine exceeds 1
        two_view_loss(mochi_loss, z1, z2, temperature=t, num_hard=8, num_mix=0, num_query_mix=0),
    ]
    for value in same:
        assert value.item() == pytest.approx(nt, rel=1e-12)


def test_dcl_is_nt_xent_minus_the_coupling_term():
    # Yeh et al.: NT-Xent = DCL - log q with q = 1 - e^{s+/t} / (e^{s+/t} + sum_neg e^{s-/t}).
    z1, z2 = _views(b=7)
    t = 0.4
    views = torch.cat([z1, z2])
    rows, _ = _rows(views, views, *(m.tolist() for m in two_view_masks(7, 0, 1, torch.device("cpu"))), [1.0] * 14)
    log_q = []
    for _, _, ps, ns in rows:
        (_, s), = ps
        pos, negs = math.exp(s / t), sum(math.exp(x / t) for _, x in ns)
        log_q.append(math.log(1 - pos / (pos + negs)))
    nt = hcl_loss(z1, z2, temperature=t, tau_plus=0.0, beta=0.0).item()
    dcl = two_view_loss(dcl_loss, z1, z2, temperature=t).item()
    assert nt == pytest.approx(dcl - sum(log_q) / len(log_q), rel=1e-12)
    assert dcl < nt


def test_dclw_weight_is_two_minus_batch_softmax():
    # lightly / the paper: w_i = 2 - B softmax_i(s+_i / sigma) over the B pairs; the two views repeat it.
    z1, z2 = _views(b=6)
    t, sigma = 0.5, 0.5
    s = torch.nn.functional.cosine_similarity(z1, z2)
    w = 2 - 6 * torch.softmax(s / sigma, dim=0)
    views = torch.cat([z1, z2])
    pos, neg = two_view_masks(6, 0, 1, torch.device("cpu"))
    logits = torch.nn.functional.normalize(views, dim=1) @ torch.nn.functional.normalize(views, dim=1).T / t
    neg_term = logits.masked_fill(~neg, float("-inf")).logsumexp(1)
    want = (-(w.repeat(2) * s.repeat(2)) / t + neg_term).mean()
    assert two_view_loss(dclw_loss, z1, z2, temperature=t, sigma=sigma).item() == pytest.approx(want.item(), rel=1e-12)


def test_hardness_offset_equals_sentence_transformers_loss_and_gradient():
    # The installed sentence-transformers' own loss on the same embeddings (no model: the
    # loss is computed from embeddings).
    from sentence_transformers.sentence_transformer.losses.multiple_negatives_ranking import (
        MultipleNegativesRankingLoss,
    )

    for alpha, t in ((9.0, 0.05), (2.5, 0.3), (0.0, 0.1)):
        q, d = (x.clone().requires_grad_() for x in _views(b=12, d=16, seed=3))
        reference = MultipleNegativesRankingLoss(None, scale=1.0 / t, hardness_mode="in_batch_negatives",
                                                 hardness_strength=alpha)
        want = reference.compute_loss_from_embeddings([q, d], None)
        want_grads = torch.autograd.grad(want, (q, d))
        eye = torch.eye(12, dtype=torch.bool)
        got = hardness_offset_loss(q, d, eye, ~eye, temperature=t, alpha=alpha)
        got_grads = torch.autograd.grad(got, (q, d))
        assert got.item() == pytest.approx(want.item(), rel=1e-12)
        for a, b in zip(got_grads, want_grads, strict=True):
            assert torch.allclose(a, b, rtol=1e-10, atol=1e-13)


# ---------------------------------------------------------------- row weights

DETERMINISTIC = [
    (masked_hcl_loss, {"tau_plus": 0.1, "beta": 1.5}),
    (dcl_loss, {}),
    (dclw_loss, {"sigma": 0.5}),
    (hardness_offset_loss, {"alpha": 9.0}),
    (fnc_loss, {"topk": 20000, "threshold": -0.5, "mode": "attraction"}),
    (fnc_loss, {"topk": 20000, "threshold": -0.5, "mode": "elimination"}),
    (ring_loss, {"lower": 0.3, "upper": 0.9}),
]


def _weighted_case():
    g = torch.Generator().manual_seed(11)
    anchors = torch.randn(7, 4, dtype=torch.float64, generator=g)
    candidates = torch.randn(9, 4, dtype=torch.float64, generator=g)
    pos = torch.zeros(7, 9, dtype=torch.bool)
    pos[torch.arange(7), torch.arange(7)] = True
    pos[2, 8] = True
    pos[5] = False  # an anchor without a positive does not count
    neg = ~pos
    neg[5] = True
    counts = torch.tensor([1, 3, 2, 1, 4, 2, 1])
    return anchors, candidates, pos, neg, counts


@pytest.mark.parametrize("fn,kwargs", DETERMINISTIC, ids=lambda x: getattr(x, "__name__", ""))
def test_row_weights_equal_repeated_rows(fn, kwargs):
    anchors, candidates, pos, neg, counts = _weighted_case()
    a1, c1 = anchors.clone().requires_grad_(), candidates.clone().requires_grad_()
    weighted = fn(a1, c1, pos, neg, temperature=0.3, row_weights=counts.double(), **kwargs)
    weighted.backward()
    a2, c2 = anchors.clone().requires_grad_(), candidates.clone().requires_grad_()
    rep = torch.repeat_interleave(torch.arange(7), counts)
    repeated = fn(a2[rep], c2, pos[rep], neg[rep], temperature=0.3, **kwargs)
    repeated.backward()
    assert weighted.item() == pytest.approx(repeated.item(), rel=1e-12)
    assert torch.allclose(a1.grad, a2.grad, rtol=1e-10, atol=1e-14)
    assert torch.allclose(c1.grad, c2.grad, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("fn,kwargs", [DETERMINISTIC[0], DETERMINISTIC[3], DETERMINISTIC[4]],
                         ids=lambda x: getattr(x, "__name__", ""))
def test_infonce_local_global_counts_equal_repeated_nodes(fn, kwargs):
    g = torch.Generator().manual_seed(12)
    local = torch.randn(10, 5, dtype=torch.float64, generator=g)
    graph = torch.randn(4, 5, dtype=torch.float64, generator=g)
    batch = torch.tensor([0, 0, 1, 1, 1, 2, 2, 3, 3, 3])
    counts = torch.tensor([2, 1, 1, 3, 1, 2, 1, 1, 4, 1])
    if fn is fnc_loss:
        kwargs = {"topk": 65536, "threshold": -1.0, "mode": "attraction"}
    l1, g1 = local.clone().requires_grad_(), graph.clone().requires_grad_()
    weighted = infonce_local_global(fn, l1, g1, batch, counts=counts, temperature=0.5, **kwargs)
    weighted.backward()
    l2, g2 = local.clone().requires_grad_(), graph.clone().requires_grad_()
    rep = torch.repeat_interleave(torch.arange(10), counts)
    repeated = infonce_local_global(fn, l2[rep], g2, batch[rep], temperature=0.5, **kwargs)
    repeated.backward()
    assert weighted.item() == pytest.approx(repeated.item(), rel=1e-12)
    assert torch.allclose(l1.grad, l2.grad, rtol=1e-10, atol=1e-14)
    assert torch.allclose(g1.grad, g2.grad, rtol=1e-10, atol=1e-14)
    # Each node's positive is its own graph, its negatives the other graphs.
    pos = batch[:, None] == torch.arange(4)
    direct = fn(local, graph, pos, ~pos, temperature=0.5, row_weights=counts.double(), **kwargs)
    assert direct.item() == pytest.approx(weighted.item(), rel=1e-14)


# ---------------------------------------------------------------- gradients, precision, errors

ALL = [*DETERMINISTIC[1:], (mochi_loss, {"num_hard": 4, "num_mix": 3, "num_query_mix": 2})]


# The hardness offset and MoCHi stop gradients by design (the offset; the synthesis), so their
# gradient is not the finite-difference derivative of their value: the offset's gradient is
# checked against sentence-transformers' autograd above; MoCHi's is not checked here.
EXACT_GRADIENT = [(fn, kw) for fn, kw in ALL if fn not in (hardness_offset_loss, mochi_loss)]


@pytest.mark.parametrize("fn,kwargs", EXACT_GRADIENT, ids=lambda x: getattr(x, "__name__", ""))
def test_gradcheck(fn, kwargs):
    z1, z2 = (x.requires_grad_() for x in _views(b=5, d=3, seed=4))
    assert torch.autograd.gradcheck(lambda a, b: two_view_loss(fn, a, b, temperature=0.5, **kwargs), (z1, z2))
    anchors, candidates, pos, neg, counts = _weighted_case()
    a, c = anchors.requires_grad_(), candidates.requires_grad_()
    kw = {**kwargs, "num_hard": 3} if fn is mochi_loss else kwargs
    assert torch.autograd.gradcheck(
        lambda x, y: fn(x, y, pos, neg, temperature=0.7, row_weights=counts.double(), **kw), (a, c))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("fn,kwargs", ALL, ids=lambda x: getattr(x, "__name__", ""))
def test_half_precision_at_small_temperature_is_finite(fn, kwargs, dtype):
    z1, z2 = _views(b=64, d=32, seed=6, dtype=torch.float32)
    z1, z2 = z1.to(dtype).requires_grad_(), (z1 + 0.1 * (z2 - z1)).to(dtype).requires_grad_()
    loss = two_view_loss(fn, z1, z2, temperature=0.05, **kwargs)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z1.grad).all() and torch.isfinite(z2.grad).all()
    assert z1.grad.dtype == dtype


@pytest.mark.parametrize("fn,kwargs", ALL + DETERMINISTIC[:1], ids=lambda x: getattr(x, "__name__", ""))
def test_nan_input_gives_nan(fn, kwargs):
    for where in ("anchor", "candidate-only"):
        z1, z2 = _views(b=8, d=4, seed=7)
        if where == "anchor":
            z1[3, 1] = float("nan")
            loss = two_view_loss(fn, z1, z2, temperature=0.5, **kwargs)
        else:  # a NaN candidate that selection (top-k, the ring band) might leave out
            candidates = torch.cat([z1, z2, torch.full((1, 4), float("nan"))])
            pos, neg = two_view_masks(8, 0, 1, torch.device("cpu"))
            pos = torch.cat([pos, torch.zeros(16, 1, dtype=torch.bool)], 1)
            neg = torch.cat([neg, torch.ones(16, 1, dtype=torch.bool)], 1)
            loss = fn(torch.cat([z1, z2]), candidates, pos, neg, temperature=0.5, **kwargs)
        assert torch.isnan(loss), where


@pytest.mark.parametrize(
    "spec,match",
    [
        ("dclw:sigma=0", "sigma"),
        ("dclw:sigma=nan", "sigma"),
        ("dclw:sigma=1e-300", "sigma"),  # s+/sigma overflows
        ("dclw:detach=maybe", "detach"),
        ("hardness:alpha=-1", "alpha"),
        ("hardness:alpha=inf", "alpha"),
        ("hardness:alpha=1e308", "alpha"),
        ("hard:beta=1e308", "beta"),
        ("jsd:beta=1e5", "beta"),
        ("fnc:topk=-1", "topk"),
        ("fnc:topk=1.5", "topk"),
        ("fnc:threshold=1.5", "threshold"),
        ("fnc:mode=both", "mode"),
        ("ring:lower=0.6,upper=0.5", "lower/upper"),
        ("ring:lower=-0.1", "lower"),
        ("ring:upper=1.5", "upper"),
        ("mochi:num_hard=1,num_mix=2", "num_hard"),
        ("mochi:num_mix=-1", "num_mix"),
        ("mochi:num_query_mix=0.5", "num_query_mix"),
        ("mochi:num_mix=1e30", "num_mix"),
        ("mochi:seed=1e30", "seed"),
        ("mochi:seed=4294967296", "seed"),
    ],
)
def test_out_of_range_parameters_are_refused_by_the_registry(spec, match):
    # One validation layer: the family's ranges, when the spec is parsed (the functions trust them).
    with pytest.raises(ValueError, match=match):
        parse_objective(spec)


@pytest.mark.parametrize(
    "fn,kwargs,match",
    [
        (dcl_loss, {"temperature": 0.0}, "temperature"),
        (fnc_loss, {"temperature": float("nan")}, "temperature"),
        (ring_loss, {"lower": 0.51, "upper": 0.52}, "lower/upper"),  # valid, but empty at 14 negatives
        (mochi_loss, {"num_hard": 15}, "num_hard"),
    ],
)
def test_temperature_and_batch_dependent_limits_raise_named_errors(fn, kwargs, match):
    z1, z2 = _views(b=8, d=4, seed=8)  # 14 negatives per anchor
    kwargs = {"temperature": 0.5, **kwargs}
    with pytest.raises(ValueError, match=match):
        two_view_loss(fn, z1, z2, **kwargs)


@pytest.mark.parametrize("spec", ["hard:beta=10000", "hardness:alpha=10000", "dclw:sigma=0.01",
                                  "mochi:num_hard=64,num_mix=64,num_query_mix=64"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_range_bounds_stay_finite_at_small_temperature(spec, dtype):
    z1, z2 = _views(b=64, d=16, seed=10, dtype=torch.float32)
    z1, z2 = z1.to(dtype).requires_grad_(), z2.to(dtype).requires_grad_()
    loss = build(spec, temperature=0.05)(z1, z2)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z1.grad).all() and torch.isfinite(z2.grad).all()


@pytest.mark.parametrize("fn", [dcl_loss, dclw_loss, hardness_offset_loss, fnc_loss, ring_loss, mochi_loss,
                                masked_hcl_loss])
def test_batch_of_one_and_bad_weights_raise(fn):
    z = torch.randn(1, 4)
    kw = {"topk": 0} if fn is fnc_loss else {"num_hard": 1, "num_mix": 0} if fn is mochi_loss else {}
    with pytest.raises(ValueError, match="at least 2 samples"):
        two_view_loss(fn, z, z, temperature=0.5, **kw)
    pos, neg = two_view_masks(1, 0, 1, torch.device("cpu"))
    with pytest.raises(ValueError, match="neg_mask"):
        fn(torch.cat([z, z]), torch.cat([z, z]), pos, neg, temperature=0.5, **kw)
    z1, z2 = _views(b=4, d=3)
    pos, neg = two_view_masks(4, 0, 1, torch.device("cpu"))
    views = torch.cat([z1, z2])
    for bad in (-torch.ones(8), torch.full((8,), float("nan")), torch.zeros(8), torch.ones(7)):
        with pytest.raises(ValueError, match="row_weights"):
            fn(views, views, pos, neg, temperature=0.5, row_weights=bad, **kw)


def test_mochi_is_reproducible_and_uses_its_generator():
    z1, z2 = _views(b=10, d=6, seed=9)
    a = two_view_loss(mochi_loss, z1, z2, temperature=0.2, num_hard=8, seed=3)
    assert a.item() == two_view_loss(mochi_loss, z1, z2, temperature=0.2, num_hard=8, seed=3).item()
    assert a.item() != two_view_loss(mochi_loss, z1, z2, temperature=0.2, num_hard=8, seed=4).item()
    g = torch.Generator().manual_seed(3)
    assert a.item() == two_view_loss(mochi_loss, z1, z2, temperature=0.2, num_hard=8, generator=g).item()
    # Synthetic hard negatives make the task harder than plain InfoNCE.
    assert a.item() > two_view_loss(mochi_loss, z1, z2, temperature=0.2, num_hard=8, num_mix=0, num_query_mix=0).item()
