r"""Hard-negative contrastive objectives in log space.

Robinson, Chuang, Sra, Jegelka. "Contrastive Learning with Hard Negative Samples",
ICLR 2021 (arXiv:2010.04592). For an anchor with positive similarity :math:`s^+` and
:math:`N` negative similarities :math:`s^-_j` (cosines) at temperature :math:`t`:

.. math::
    \mathcal{L} = -\log \frac{e^{s^+/t}}{e^{s^+/t} + N_g}, \qquad
    N_g = \max\Big(N e^{-1/t},\;
        \frac{N\,\mathbb{E}_w[e^{s^-/t}] - \tau^+ N e^{s^+/t}}{1-\tau^+}\Big),
    \qquad w_j \propto e^{\beta s^-_j / t}.

``beta=0, tau_plus=0`` is NT-Xent (InfoNCE); ``beta=0, tau_plus>0`` is the debiased
loss of Chuang et al. (2020). Nothing here exponentiates a raw logit: every sum of
exponentials is a log-sum-exp with its row maximum taken out, so fp16/bf16 inputs and
small temperatures stay finite.

Two entry points share one implementation:

* :func:`hcl_loss` -- two views ``(B, d)`` as in SimCLR (2B anchors, N = 2B-2);
* :func:`masked_hcl_loss` -- anchors ``(R, d)`` against candidates ``(C, d)`` with
  boolean positive / negative masks (several positives per anchor, e.g. the two
  neighbouring sentences of quick-thought, or candidates gathered from other ranks).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from common.distributed import gather_with_grad, rank_and_world
from common.masked import check_temperature, logits_backward, positive_logits, prepare, reduce_pairs
from common.views import check_views


def check_hparams(temperature: float, tau_plus: float, beta: float) -> None:
    """``ValueError`` naming the argument when a hyper-parameter is out of range: the registry's ranges of ``hard``.

    For the losses built outside the registry (:class:`HardNegativeLoss`, sentence-transformers' wrapper), so
    they are held to the same ranges, not to a copy of them.
    """
    from common.objectives import make_objective

    check_temperature(temperature)
    make_objective("hard", tau_plus=tau_plus, beta=beta)


class _LogWeightedMean(torch.autograd.Function):
    r"""Row-wise :math:`\log \mathbb{E}_w[e^{x}]` with :math:`w \propto e^{\beta x}` over finite entries, ``x = a c^T / t``.

    ``x`` arrives computed without autograd history and is consumed in place; the gradient
    goes to the anchors ``a`` and candidates ``c`` through :func:`common.masked.logits_backward`,
    a block of rows at a time. ``exclude`` marks the entries that are not negatives: a
    ``(R, k)`` index tensor of columns or a ``(R, C)`` bool mask. A hand-written backward
    keeps the two softmax-like passes to two exponentials forward (one ``(R, C)`` tensor
    each, one when ``beta = 0``) and one fused update backward, and its gradient is already
    zero at excluded entries (eager autograd through a masked copy and two ``logsumexp``
    calls costs several more full passes).
    """

    @staticmethod
    def forward(ctx, anchors: Tensor, candidates: Tensor, logits: Tensor, temperature: float, exclude: Tensor,
                beta: float, detach_weights: bool, count: Tensor) -> Tensor:
        if exclude.dtype == torch.bool:
            shifted = logits.masked_fill_(exclude, float("-inf"))
        else:
            shifted = logits.scatter_(1, exclude, float("-inf"))
        row_max = shifted.amax(dim=1, keepdim=True)
        shifted.sub_(row_max)
        if beta == 0.0:
            # Uniform weights: E[e^x] = sum(e^x) / N.  One exponential only (NT-Xent / DCL path).
            weights_exp = None
            weight_sum = count
        else:
            weights_exp = (shifted * beta).exp_()  # e^{beta (x - m)}, 0 where masked
            weight_sum = weights_exp.sum(dim=1)
        tilted_exp = shifted.mul_(1.0 + beta).exp_()  # e^{(1+beta)(x - m)}, reuses `shifted`
        tilted_sum = tilted_exp.sum(dim=1)
        ctx.save_for_backward(anchors, candidates, tilted_exp, tilted_sum, weights_exp, weight_sum)
        ctx.beta, ctx.detach_weights, ctx.temperature = beta, detach_weights, temperature
        return row_max.squeeze(1) + tilted_sum.log() - weight_sum.log()

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        anchors, candidates, tilted_exp, tilted_sum, weights_exp, weight_sum = ctx.saved_tensors
        beta = ctx.beta
        if ctx.detach_weights or beta == 0.0:
            # d/dx_j log sum_k w_k e^{x_k} with w held fixed = softmax((1+beta) x)_j.
            tilted_scale = (grad_out / tilted_sum).unsqueeze(1)

            def logits_grad(rows: slice) -> Tensor:
                return tilted_exp[rows] * tilted_scale[rows]
        else:
            # d/dx_j [LSE((1+b)x) - LSE(bx)] = (1+b) softmax((1+b)x)_j - b softmax(bx)_j.
            tilted_scale = (grad_out * (1.0 + beta) / tilted_sum).unsqueeze(1)
            weights_scale = (grad_out * beta / weight_sum).unsqueeze(1)

            def logits_grad(rows: slice) -> Tensor:
                grad = tilted_exp[rows] * tilted_scale[rows]
                return grad.addcmul_(weights_exp[rows], weights_scale[rows], value=-1.0)
        grads = logits_backward(anchors, candidates, ctx.temperature, tuple(tilted_exp.shape), logits_grad)
        return *grads, None, None, None, None, None, None


def _log1mexp(x: Tensor) -> Tensor:
    """log(1 - e^x) for x < 0, accurate at both ends (Maechler, 2012)."""
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def _pair_losses(
    pos_logit: Tensor,
    log_weighted_mean: Tensor,
    log_count: Tensor,
    temperature: float,
    tau_plus: float,
) -> Tensor:
    """-log(e^{l+} / (e^{l+} + N_g)) per (anchor, positive) pair, all in log space."""
    log_reweighted_sum = log_count + log_weighted_mean  # log(N E_w[e^{s-/t}])
    log_floor = log_count - 1.0 / temperature  # log(N e^{-1/t})
    if tau_plus == 0.0:
        log_ng = torch.maximum(log_reweighted_sum, log_floor)
    else:
        # log of tau+ N e^{l+} relative to N E_w: the debiased sum is positive iff this is < 0.
        ratio = math.log(tau_plus) + log_count + pos_logit - log_reweighted_sum
        positive = ratio < 0
        safe_ratio = torch.where(positive, ratio, torch.full_like(ratio, -1.0))
        log_debiased = log_reweighted_sum + _log1mexp(safe_ratio) - math.log1p(-tau_plus)
        log_ng = torch.where(positive, torch.maximum(log_debiased, log_floor), log_floor)
    # log(1 + N_g e^{-l+}) as logaddexp(0, .): no cancellation when the loss is tiny.
    return torch.logaddexp(torch.zeros_like(log_ng), log_ng - pos_logit)


def _prepare(*tensors: Tensor) -> list[Tensor]:
    """L2-normalise in float32 at least: half-precision logits at t=0.05 overflow."""
    dtype = torch.promote_types(tensors[0].dtype, torch.float32)
    return [F.normalize(t.to(dtype), dim=-1) for t in tensors]


def hcl_loss(
    z1: Tensor,
    z2: Tensor,
    *,
    temperature: float = 0.5,
    tau_plus: float = 0.1,
    beta: float = 1.0,
    detach_weights: bool = False,
    gather_distributed: bool = False,
) -> Tensor:
    """Hard-negative loss for two views, averaged over the 2B anchors.

    Args:
        z1, z2: ``(B, d)`` embeddings of the two views (normalised here; B >= 2 over all ranks).
        temperature: t > 0.
        tau_plus: class prior of false negatives, in [0, 1). 0 = no debiasing.
        beta: concentration of the importance weights, >= 0. 0 = uniform weights.
            Parameters are validated where the loss is built (:func:`check_hparams`, the registry).
        detach_weights: treat the importance weights as constants in the gradient
            (the released code differentiates through them; that is the default here).
        gather_distributed: use the other ranks' embeddings as extra negatives (with
            gradients). Every rank must pass the same B. Averaging gradients across
            ranks (DDP) then gives the gradient of the loss on the global batch.
    """
    check_temperature(temperature)
    rank, world = rank_and_world() if gather_distributed else (0, 1)
    check_views(z1, z2, world)
    batch = z1.shape[0]
    with torch.autocast(z1.device.type, enabled=False):
        z1, z2 = _prepare(z1, z2)
        all1 = gather_with_grad(z1) if world > 1 else z1
        all2 = gather_with_grad(z2) if world > 1 else z2
        anchors = torch.cat([z1, z2])
        candidates = torch.cat([all1, all2])
        with torch.no_grad():
            logits = (anchors / temperature) @ candidates.T  # (2B, 2WB), consumed by _LogWeightedMean
        # Each anchor's own column and its partner's column are not negatives.
        local = torch.arange(batch, device=z1.device) + rank * batch
        other = local + world * batch
        excluded = torch.stack([torch.cat([local, other]), torch.cat([other, local])], dim=1)
        count = torch.full((2 * batch,), 2 * world * batch - 2, dtype=logits.dtype, device=logits.device)
        log_mean = _LogWeightedMean.apply(anchors, candidates, logits, temperature, excluded, float(beta),
                                          detach_weights, count)
        pos_logit = (z1 * z2).sum(dim=1).repeat(2) / temperature
        return _pair_losses(pos_logit, log_mean, count.log(), temperature, tau_plus).mean()


def masked_hcl_loss(
    anchors: Tensor,
    candidates: Tensor,
    pos_mask: Tensor,
    neg_mask: Tensor,
    *,
    temperature: float = 0.5,
    row_weights: Tensor | None = None,
    tau_plus: float = 0.1,
    beta: float = 1.0,
    detach_weights: bool = False,
) -> Tensor:
    """Hard-negative loss over explicit masks.

    Every ``(r, c)`` with ``pos_mask[r, c]`` is one positive pair; its negatives are the
    candidates ``c'`` with ``neg_mask[r, c']`` (positives never count as negatives, so
    the masks must not overlap). The loss of an anchor is the mean over its positives;
    the result is the mean over anchors that have at least one positive, row ``r`` counted
    ``row_weights[r]`` times when given. With one positive per anchor and all other
    candidates negative this equals :func:`hcl_loss`.

    Args:
        anchors: ``(R, d)``; candidates: ``(C, d)`` (both normalised here).
        pos_mask, neg_mask: boolean ``(R, C)``.
        row_weights: ``(R,)`` non-negative; the same as repeating each row that many times.
        temperature, tau_plus, beta, detach_weights: as in :func:`hcl_loss`.
    """
    batch = prepare(anchors, candidates, pos_mask, neg_mask, row_weights, temperature)
    with torch.autocast(batch.anchors.device.type, enabled=False):
        count = batch.neg_count.to(batch.anchors.dtype)
        log_mean = _LogWeightedMean.apply(batch.anchors, batch.candidates, batch.take_logits(), temperature,
                                          ~batch.neg_mask, float(beta), detach_weights, count)
        pair_row, pos_logit = positive_logits(batch)
        losses = _pair_losses(pos_logit, log_mean[pair_row], count.log()[pair_row], temperature, tau_plus)
        return reduce_pairs(batch, pair_row, losses)


def annealed_beta(beta: float, epoch: int, epochs: int, steps: int = 9) -> float:
    """Beta for 1-based ``epoch`` under the released code's "down" annealing.

    The released image code steps beta through ``linspace(beta, 0, steps)`` once every
    ``epochs // steps`` epochs; the first step repeats the starting value, so beta is held
    for two intervals, then falls linearly, reaching 0 after ``steps`` intervals.
    """
    interval = max(epochs // steps, 1)
    done = (epoch - 1) // interval  # intervals finished before this epoch
    if done == 0:
        return float(beta)
    index = min(done - 1, steps - 1)
    return float(beta) * (1.0 - index / (steps - 1))


class HardNegativeLoss(nn.Module):
    """Module form of :func:`hcl_loss`: validated hyper-parameters, optional gathering.

    ``beta`` may be changed between steps (annealing). Example::

        loss_fn = HardNegativeLoss(temperature=0.5, tau_plus=0.1, beta=1.0)
        loss = loss_fn(projector(encoder(view1)), projector(encoder(view2)))
    """

    def __init__(
        self,
        temperature: float = 0.5,
        tau_plus: float = 0.1,
        beta: float = 1.0,
        detach_weights: bool = False,
        gather_distributed: bool = False,
    ) -> None:
        super().__init__()
        check_hparams(temperature, tau_plus, beta)
        if gather_distributed and not torch.distributed.is_initialized():
            raise ValueError("gather_distributed=True needs an initialised torch.distributed process group")
        self.temperature, self.tau_plus, self.beta = temperature, tau_plus, beta
        self.detach_weights, self.gather_distributed = detach_weights, gather_distributed

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        """Loss of two ``(B, d)`` views; see :func:`hcl_loss`."""
        return hcl_loss(
            z1,
            z2,
            temperature=self.temperature,
            tau_plus=self.tau_plus,
            beta=self.beta,
            detach_weights=self.detach_weights,
            gather_distributed=self.gather_distributed,
        )

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, tau_plus={self.tau_plus}, beta={self.beta}"
