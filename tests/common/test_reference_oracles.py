"""Each family against a float64 transcription of its *reference code*, at its defaults and off them.

The transcriptions follow the reference line by line (same slicing, masking and reductions; tensors in
place of TensorFlow where the reference is TensorFlow), so they test that we run what the reference runs,
not only our own formula. Where we deviate on purpose (the family's ``deviation`` in the registry), the
test states the mapping: a factor, or the one setting under which both select the same negatives.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from common.decoupled import dclw_loss
from common.fnc import fnc_loss
from common.hardness import alpha_for_multiplier, hardness_offset_loss
from common.objectives import build
from common.ring import band_ranks, ring_loss
from common.views import two_view_loss, two_view_masks

LARGE_NUM = 1e9


def _grads(loss: torch.Tensor, inputs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss, inputs))


def _max_abs(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a, b, strict=True))


# ---------------------------------------------------------------- FNC: google-research/fnc objective.py


def fnc_reference(hidden: torch.Tensor, views: int, temperature: float, fn_topk: int, fn_threshold: float):
    """``add_contrastive_loss`` of google-research/fnc (no TPU, hidden_norm=True), 2 + support_size = ``views``."""
    hidden = F.normalize(hidden, dim=-1)
    splitted_list = hidden.split(hidden.shape[0] // views)
    batch_size = splitted_list[0].shape[0]
    splitted_list_concat = torch.stack(splitted_list, 1)  # (B, views, d)
    masks = torch.eye(batch_size, dtype=hidden.dtype)
    masks_all = masks.repeat(1, views)
    splitted_list_large_concat = torch.cat(splitted_list)
    all_scores = (splitted_list_concat @ splitted_list_large_concat.T).amax(dim=1)  # max over the sample's views
    all_scores = all_scores - masks_all * LARGE_NUM
    topk_inds = all_scores.topk(fn_topk, dim=1).indices
    dense_mask = (all_scores > fn_threshold).to(hidden.dtype)
    dense_mask_topk = torch.zeros_like(dense_mask).scatter_(1, topk_inds, 1.0)
    dense_mask = dense_mask * dense_mask_topk
    total_loss = 0.0
    for anchor_ind in range(views):
        view_list, log_numerator = [], 0.0
        for view_ind in range(views):
            anchor_view = splitted_list[anchor_ind] @ splitted_list[view_ind].T / temperature
            if view_ind == anchor_ind:
                anchor_view = anchor_view - masks * LARGE_NUM
            else:
                log_numerator = log_numerator + (anchor_view * masks).sum(dim=1)
            view_list.append(anchor_view)
        denominator = torch.cat(view_list, dim=1)
        log_numerator = log_numerator + (denominator * dense_mask).sum(dim=1)
        log_numerator = -log_numerator / (views - 1.0 + dense_mask.sum(dim=1))
        log_denominator = torch.logsumexp(denominator, dim=1)
        total_loss = total_loss + (log_numerator + log_denominator).mean()
    return total_loss * 2.0 / views, int(dense_mask.sum())


def _clustered_views(samples: int, views: int, seed: int) -> torch.Tensor:
    """(views * samples, 16) float64, view-major: 4 classes, so that some cosines exceed 0.7 and some do not."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(4, 16, dtype=torch.float64, generator=g)
    sample = centres[torch.arange(samples) % 4] + 0.9 * torch.randn(samples, 16, dtype=torch.float64, generator=g)
    return torch.cat([sample + 0.3 * torch.randn(samples, 16, dtype=torch.float64, generator=g) for _ in range(views)])


@pytest.mark.parametrize("views", [2, 4])  # SimCLR's two views; two more as support views
@pytest.mark.parametrize("fn_topk,fn_threshold,t", [(1, 0.7, 0.1), (3, 0.7, 0.5), (3, 0.2, 0.05)])
def test_fnc_equals_the_reference_code(views, fn_topk, fn_threshold, t):
    # 64 negatives per anchor: views * (samples - 1) = 64.
    samples = 64 // views + 1
    hidden = _clustered_views(samples, views, seed=fn_topk + views).requires_grad_()
    want, cancelled = fnc_reference(hidden, views, t, fn_topk, fn_threshold)
    assert 0 < cancelled < fn_topk * views * samples  # both the top-k and the threshold select
    # topk counts per 65536 candidates: fn_topk of 64 negatives is 1024 fn_topk.
    kwargs = {"temperature": t, "topk": 1024 * fn_topk, "threshold": fn_threshold, "mode": "attraction"}
    if views == 2:  # the two-view path every image run takes
        got = two_view_loss(fnc_loss, *hidden.split(samples), **kwargs)
    else:  # every view an anchor, the sample's other views its positives (and so its support set)
        sample = torch.arange(views * samples) % samples
        same = sample[:, None] == sample[None, :]
        pos = same & ~torch.eye(views * samples, dtype=torch.bool)
        got = fnc_loss(hidden, hidden, pos, ~same, **kwargs)
    # The reference adds the views' mean losses: twice our mean over every anchor.
    error = abs(2 * got.item() - want.item())
    grad_error = _max_abs(_grads(2 * got, (hidden,)), _grads(want, (hidden,)))
    print(f"fnc views={views} topk={fn_topk} threshold={fn_threshold}: max abs error {error:.1e}, gradient {grad_error:.1e}")
    assert error < 1e-12 and grad_error < 1e-12


def test_fnc_defaults_are_the_references_rate_with_at_least_one():
    # Defaults topk=10, threshold=0.7: 10 of 65536 candidates rounds to 0 at 64 negatives, so one is cancelled.
    hidden = _clustered_views(33, 2, seed=5).requires_grad_()
    want, cancelled = fnc_reference(hidden, 2, 0.5, 1, 0.7)
    got = build("fnc", temperature=0.5)(*hidden.split(33))
    assert 0 < cancelled < 66 and abs(2 * got.item() - want.item()) < 1e-12


# ---------------------------------------------------------------- ring: mhw32/contrastive-ring-public SimCLRRing


def simclr_ring_reference(outputs1: torch.Tensor, outputs2: torch.Tensor, t: float, thres_outer: float,
                          thres_inner: float) -> torch.Tensor:
    """``SimCLRRing.get_loss`` (dynamic_inner, self_negative, no neighbor views), as in simclr_ring.json."""
    outputs1, outputs2 = F.normalize(outputs1, dim=1), F.normalize(outputs2, dim=1)
    witness_pos = torch.sum(outputs1 * outputs2, dim=1) / t
    outputs12 = torch.cat([outputs1, outputs2], dim=0)
    all_dps = outputs1 @ outputs12.T / t
    sorted_dps, _ = torch.sort(all_dps, dim=1, descending=True)
    all_size = all_dps.size(1)
    outer_idx = int(thres_outer * all_size)
    outer_dps = sorted_dps[:, :outer_idx]
    inner_idx = int(thres_inner * outer_dps.size(1))
    ring_dps = outer_dps[:, inner_idx:]
    ring_dps = torch.cat((witness_pos.unsqueeze(1), ring_dps), dim=1)
    witness_partition = torch.logsumexp(ring_dps, dim=1)
    return -torch.mean(witness_pos - witness_partition)


@pytest.mark.parametrize("batch,t,thres_outer,thres_inner", [(40, 0.07, 0.5, 0.1), (64, 0.5, 0.5, 0.1),
                                                              (50, 0.2, 0.8, 0.25)])
def test_ring_equals_the_reference_code(batch, t, thres_outer, thres_inner):
    g = torch.Generator().manual_seed(batch)
    z1 = torch.randn(batch, 8, dtype=torch.float64, generator=g)
    z2 = z1 + 0.02 * torch.randn(batch, 8, dtype=torch.float64, generator=g)
    z1.requires_grad_(), z2.requires_grad_()
    # The reference ranks all 2B products of a view-1 anchor: its self-product first, its positive second (checked),
    # so its cuts at positions inner and outer are cuts at inner - 2 and outer - 2 among the 2B - 2 negatives.
    views = F.normalize(torch.cat([z1, z2]), dim=1).detach()
    order = (views[:batch] @ views.T).argsort(dim=1, descending=True)
    assert (order[:, 0] == torch.arange(batch)).all() and (order[:, 1] == torch.arange(batch) + batch).all()
    outer = int(thres_outer * 2 * batch)
    inner = int(thres_inner * outer)
    assert inner >= 2  # the inner cut drops the self-product and the positive
    n = 2 * batch - 2
    lower, upper = 1 - (outer - 2 + 0.5) / n, 1 - (inner - 2 + 0.5) / n  # floor((1 - lower) n) = outer - 2, ...
    want = simclr_ring_reference(z1, z2, t, thres_outer, thres_inner)
    pos, neg = (m[:batch] for m in two_view_masks(batch, 0, 1, torch.device("cpu")))
    got = ring_loss(z1, torch.cat([z1, z2]), pos, neg, temperature=t, lower=lower, upper=upper)  # view-1 anchors
    error = abs(got.item() - want.item())
    grad_error = _max_abs(_grads(got, (z1, z2)), _grads(want, (z1, z2)))
    print(f"ring B={batch} outer={thres_outer} inner={thres_inner}: max abs error {error:.1e}, gradient {grad_error:.1e}")
    assert error < 1e-12 and grad_error < 1e-12


def test_ring_defaults_count_the_references_band_over_the_negatives():
    # lower=0.5, upper=0.95: keep int(0.5 N) most similar, drop int(0.1 int(0.5 N)) of them, for every N.
    count = torch.arange(1, 20001)
    low, high = band_ranks(count, 0.5, 0.95)
    kept = torch.tensor([int(0.5 * n) for n in count.tolist()])
    dropped = torch.tensor([int(0.1 * int(0.5 * n)) for n in count.tolist()])
    assert torch.equal(count - low, kept) and torch.equal(count - 1 - high, dropped)
    assert str(build("ring", temperature=0.5).objective) == "ring:lower=0.5,upper=0.95"


# ---------------------------------------------------------------- DCLW: raminnakhli's loss/dcl.py and lightly's DCLWLoss

SMALL_NUM = math.log(1e-45)


def raminnakhli_dclw(z1: torch.Tensor, z2: torch.Tensor, temperature: float, sigma: float) -> torch.Tensor:
    """``DCLW(sigma, temperature)(z1, z2)`` of raminnakhli/Decoupled-Contrastive-Learning: one way, weights differentiated."""
    weight = 2 - z1.size(0) * torch.softmax((z1 * z2).sum(dim=1) / sigma, dim=0).squeeze()
    cross_view_distance = z1 @ z2.t()
    positive_loss = -torch.diag(cross_view_distance) / temperature * weight
    neg_similarity = torch.cat((z1 @ z1.t(), cross_view_distance), dim=1) / temperature
    neg_mask = torch.eye(z1.size(0), dtype=z1.dtype).repeat(1, 2)
    negative_loss = torch.logsumexp(neg_similarity + neg_mask * SMALL_NUM, dim=1)
    return (positive_loss + negative_loss).mean()


def lightly_dclw(out0: torch.Tensor, out1: torch.Tensor, temperature: float, sigma: float) -> torch.Tensor:
    """``DCLWLoss(temperature, sigma)`` of lightly (lightly/loss/dcl_loss.py, e8d317f), one process."""
    def weights(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        similarity = torch.einsum("nm,nm->n", a.detach(), b.detach()) / sigma
        return (2 - a.shape[0] * torch.softmax(similarity, dim=0)).detach()  # torch.tensor(...): a constant copy

    def one_way(o0: torch.Tensor, o1: torch.Tensor) -> torch.Tensor:
        batch_size = o0.shape[0]
        diag_mask = torch.eye(batch_size, dtype=torch.bool)
        sim_00 = torch.einsum("nc,mc->nm", o0, o0) / temperature
        sim_01 = torch.einsum("nc,mc->nm", o0, o1) / temperature
        positive_loss = -sim_01[diag_mask] * weights(o0, o1)
        sim_00 = sim_00[~diag_mask].view(batch_size, -1)
        sim_01 = sim_01[~diag_mask].view(batch_size, -1)
        negative_loss = torch.logsumexp(torch.cat([sim_00, sim_01], dim=1), dim=1)
        return (positive_loss + negative_loss).mean()

    out0, out1 = F.normalize(out0, dim=1), F.normalize(out1, dim=1)
    return 0.5 * (one_way(out0, out1) + one_way(out1, out0))


def _dclw_views(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z1 = torch.randn(12, 6, dtype=torch.float64, generator=g)
    return z1.requires_grad_(), (z1 + 0.8 * torch.randn(12, 6, dtype=torch.float64, generator=g)).requires_grad_()


@pytest.mark.parametrize("t,sigma", [(0.5, 0.5), (0.1, 0.2), (1.0, 2.0)])
def test_dclw_default_equals_the_reference_code(t, sigma):
    z1, z2 = _dclw_views(int(10 * sigma))
    # The reference scores view-1 anchors and leaves normalising to its caller: both directions, normalised inputs.
    n1, n2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    want = 0.5 * (raminnakhli_dclw(n1, n2, t, sigma) + raminnakhli_dclw(n2, n1, t, sigma))
    got = build(f"dclw:sigma={sigma}", temperature=t)(z1, z2)  # detach=no, the default
    error = abs(got.item() - want.item())
    grad_error = _max_abs(_grads(got, (z1, z2)), _grads(want, (z1, z2)))
    print(f"dclw detach=no t={t} sigma={sigma}: max abs error {error:.1e}, gradient {grad_error:.1e}")
    assert error < 1e-12 and grad_error < 1e-12


@pytest.mark.parametrize("t,sigma", [(0.5, 0.5), (0.1, 0.2)])
def test_dclw_detach_yes_equals_lightly_and_no_differs_only_in_the_gradient(t, sigma):
    z1, z2 = _dclw_views(7)
    want = lightly_dclw(z1, z2, t, sigma)
    want_grads = _grads(want, (z1, z2))
    detached = two_view_loss(dclw_loss, z1, z2, temperature=t, sigma=sigma, detach="yes")
    error, grad_error = abs(detached.item() - want.item()), _max_abs(_grads(detached, (z1, z2)), want_grads)
    print(f"dclw detach=yes t={t} sigma={sigma}: max abs error {error:.1e}, gradient {grad_error:.1e}")
    assert error < 1e-12 and grad_error < 1e-12
    differentiated = two_view_loss(dclw_loss, z1, z2, temperature=t, sigma=sigma, detach="no")
    assert abs(differentiated.item() - want.item()) < 1e-12
    assert _max_abs(_grads(differentiated, (z1, z2)), want_grads) > 1e-3


# ---------------------------------------------------------------- hardness: alpha as a logit multiplier


@pytest.mark.parametrize("t", [0.05, 0.2, 0.5])
def test_alpha_for_multiplier_scales_the_negative_logits(t):
    # alpha * sg(s) added to s/t is (1 + alpha t) s/t: the multiplier's alpha gives exactly those logits.
    assert alpha_for_multiplier(1.45, 0.05) == pytest.approx(9.0, rel=1e-12)  # LLaVE's alpha = 9 at t = 0.05
    g = torch.Generator().manual_seed(3)
    q, d = torch.randn(10, 8, dtype=torch.float64, generator=g), torch.randn(10, 8, dtype=torch.float64, generator=g)
    eye = torch.eye(10, dtype=torch.bool)
    logits = F.normalize(q, dim=1) @ F.normalize(d, dim=1).T / t
    for multiplier in (1.0, 1.45, 2.8, 5.5):
        got = hardness_offset_loss(q, d, eye, ~eye, temperature=t, alpha=alpha_for_multiplier(multiplier, t))
        scaled = torch.where(eye, logits, multiplier * logits)
        want = (torch.logsumexp(scaled, dim=1) - logits.diagonal()).mean()
        assert got.item() == pytest.approx(want.item(), rel=1e-12)
    with pytest.raises(ValueError, match="multiplier"):
        alpha_for_multiplier(0.5, t)
