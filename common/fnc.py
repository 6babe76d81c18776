r"""False-negative cancellation (FNC), as google-research/fnc picks its false negatives, in-batch.

Huynh et al. treat the candidates most similar to a sample as likely *false* negatives (same
class). Their code (``objective.py``, ``add_contrastive_loss``) scores every candidate ``j``
of sample ``i`` by its largest cosine to the sample's *support set* (all of its views: the two
augmented views and ``support_size`` extra ones), :math:`\sigma_{ij} = \max_{v \in S_i} \cos(v, j)`,
and takes as false negatives the ``fn_topk`` highest-scoring candidates whose score exceeds
``fn_threshold`` (10 and 0.7 at batch 4096, among 16 x 4096 memory entries). One set per
sample: every view of the sample cancels the same candidates.

Here the support set of anchor ``r`` is the anchor and its positives (its other view; a
sentence's neighbours): in-batch there are no extra support views. The count scales with the
negatives: anchor ``r`` with :math:`N_r` negatives cancels at most

.. math::
    k_r = \min\big(N_r - 1,\ \max(1,\ \lfloor \text{topk}\,N_r / 65536 + \tfrac12 \rfloor)\big)

(none when ``topk = 0``): the reference's rate of 10 per 65536 candidates, at least one, and
one true negative always kept. :math:`F_r` is the top :math:`k_r` by score, less those
scoring at most ``threshold``. With :math:`\ell_c = s_{rc}/t`:

.. math::
    \mathcal{L}^{\mathrm{att}}_r = \frac{1}{|P_r| + |F_r|} \sum_{a \in P_r \cup F_r}
        \Big(-\ell_a + \log \sum_{c \in P_r \cup N_r} e^{\ell_c}\Big),
    \qquad
    \mathcal{L}^{\mathrm{elim}}_r = \frac{1}{|P_r|} \sum_{p \in P_r}
        -\log \frac{e^{\ell_p}}{e^{\ell_p} + \sum_{j \in N_r \setminus F_r} e^{\ell_j}}

*attraction* (the reference) pulls them in as positives over the anchor's whole candidate set;
*elimination* (the paper's other variant) only drops them from the negatives. Selection reads
detached similarities. The reference adds the views' mean losses (twice our mean).
"""

from __future__ import annotations

import torch
from torch import Tensor

from common.masked import MaskedBatch, info_nce_loss, masked_logsumexp, pair_logits, prepare, reduce_pairs

#: Candidates per anchor in the reference's published run (a memory of 16 x its batch of 4096): ``topk`` counts there.
REFERENCE_CANDIDATES = 65536


def fnc_loss(
    anchors: Tensor,
    candidates: Tensor,
    pos_mask: Tensor,
    neg_mask: Tensor,
    *,
    temperature: float,
    row_weights: Tensor | None = None,
    topk: float = 10,
    threshold: float = 0.7,
    mode: str = "attraction",
) -> Tensor:
    """InfoNCE with each anchor's likely false negatives (support-set score, top-k, threshold) attracted or eliminated."""
    batch = prepare(anchors, candidates, pos_mask, neg_mask, row_weights, temperature)
    with torch.autocast(batch.anchors.device.type, enabled=False):
        false = false_negatives(batch, topk, threshold)
        if mode == "elimination":
            return info_nce_loss(batch, masked_logsumexp(batch, ~batch.neg_mask | false))
        log_all = masked_logsumexp(batch, ~(batch.neg_mask | batch.pos_mask))
        pair_row, pair_col = (batch.pos_mask | false).nonzero(as_tuple=True)
        return reduce_pairs(batch, pair_row, log_all[pair_row] - pair_logits(batch, pair_row, pair_col))


def false_counts(neg_count: Tensor, topk: float) -> Tensor:
    """:math:`k_r` of every row: the reference's ``topk`` per 65536 candidates at the row's negatives, at least 1, at most N - 1."""
    if topk == 0:
        return torch.zeros_like(neg_count)
    scaled = torch.floor(topk * neg_count.double() / REFERENCE_CANDIDATES + 0.5).long()
    return torch.minimum(scaled.clamp_min(1), neg_count - 1)


@torch.no_grad()
def false_negatives(batch: MaskedBatch, topk: float, threshold: float) -> Tensor:
    """(R, C) bool: each row's top :math:`k_r` negatives by support-set score, those scoring above ``threshold``."""
    counts = false_counts(batch.neg_count, topk)
    false = torch.zeros_like(batch.neg_mask)
    most = int(counts.max())
    if most == 0:
        return false
    # The support set's best cosine: the anchor's own row, then each positive's row (a candidate's), by maximum.
    scores = batch.anchors @ batch.candidates.T
    pair_row, pair_col = batch.pos_mask.nonzero(as_tuple=True)
    positive_rows = batch.candidates[pair_col] @ batch.candidates.T
    scores.scatter_reduce_(0, pair_row.unsqueeze(1).expand_as(positive_rows), positive_rows, "amax")
    scores.masked_fill_(~batch.neg_mask, float("-inf"))
    top_scores, top = scores.topk(most, dim=1)  # sorted: rank i < k_r is row r's i-th candidate
    keep = (torch.arange(most, device=top.device) < counts.unsqueeze(1)) & (top_scores > threshold)
    return false.scatter_(1, top, keep)
