r"""A sentence-transformers loss with in-batch negatives, debiasing and hard-negative weighting.

Drop-in for ``MultipleNegativesRankingLoss`` (same columns, same ``scale``), with the two knobs of
Robinson et al. (ICLR 2021) added through the loss core :func:`common.losses.masked_hcl_loss`.
For anchor :math:`a_i`, positive :math:`p_i` and the :math:`N` other candidates :math:`c_j` of the
batch (every other positive and every hard-negative column), with cosine similarities and
:math:`t = 1/\text{scale}`:

.. math::
    \ell_i = -\log \frac{e^{s(a_i,p_i)/t}}{e^{s(a_i,p_i)/t} + N_g},\quad
    N_g = \max\Big(N e^{-1/t}, \frac{N\,\mathbb{E}_w[e^{s(a_i,c_j)/t}] - \tau^+ N e^{s(a_i,p_i)/t}}{1-\tau^+}\Big),
    \quad w_j \propto e^{\beta\, s(a_i,c_j)/t}.

``tau_plus = beta = 0`` gives exactly ``MultipleNegativesRankingLoss``'s value (cross-entropy over
the scaled cosines): the floor :math:`N e^{-1/t}` never binds without debiasing, since every
cosine is at least -1.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from common.distributed import gather_with_grad, rank_and_world
from common.losses import check_hparams, masked_hcl_loss
from common.objectives import Objective, build


class HardNegativesRankingLoss(nn.Module):
    """In-batch-negatives ranking loss with debiasing (``tau_plus``) and hard-negative weighting (``beta``).

    Args:
        model: the ``SentenceTransformer`` being trained.
        scale: inverse temperature of the cosine similarities (20 = temperature 0.05, as SimCSE and
            ``MultipleNegativesRankingLoss`` use).
        tau_plus: prior probability that an in-batch negative is in fact a positive, in [0, 1);
            0 switches debiasing off.
        beta: concentration of the importance weights on hard (similar) negatives, >= 0; 0 weighs
            all negatives equally.
        gather_across_devices: under ``torch.distributed`` (e.g. multi-GPU training with the
            ``SentenceTransformerTrainer``), every rank scores its anchors against the candidates of
            all ranks, with gradients flowing back to the rank that produced them. Every rank must
            use the same per-device batch size (set ``dataloader_drop_last=True``).
        detach_weights: treat the importance weights as constants in the backward pass.

    Inputs:
        ``(anchor, positive)`` pairs or ``(anchor, positive, negative_1, ..., negative_n)`` tuples;
        labels are not used. For SimCSE-style unsupervised training pass each sentence as both
        anchor and positive: dropout makes the two embeddings differ.

    References:
        Robinson, Chuang, Sra, Jegelka. "Contrastive Learning with Hard Negative Samples", ICLR 2021,
        https://arxiv.org/abs/2010.04592.

    Example::

        from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
        from datasets import Dataset

        model = SentenceTransformer("all-MiniLM-L6-v2")
        train = Dataset.from_dict({"anchor": sentences, "positive": sentences})
        loss = HardNegativesRankingLoss(model, scale=20.0, tau_plus=0.1, beta=1.0)
        SentenceTransformerTrainer(model=model, train_dataset=train, loss=loss).train()
    """

    def __init__(
        self,
        model: nn.Module,
        scale: float = 20.0,
        tau_plus: float = 0.1,
        beta: float = 1.0,
        gather_across_devices: bool = False,
        detach_weights: bool = False,
    ) -> None:
        super().__init__()
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        check_hparams(1.0 / scale, tau_plus, beta)
        self.model = model
        self.scale, self.tau_plus, self.beta = float(scale), float(tau_plus), float(beta)
        self.gather_across_devices, self.detach_weights = gather_across_devices, detach_weights

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        """Embed every column with ``self.model`` and return the mean loss over the anchors.

        Args:
            sentence_features: one tokenised batch per column (anchor, positive, negatives...),
                as the ``SentenceTransformerTrainer``'s collator produces them.
            labels: ignored (the pairing is given by position).
        """
        embeddings = [self.model(features)["sentence_embedding"] for features in sentence_features]
        return self.compute_loss_from_embeddings(embeddings, labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None = None) -> Tensor:
        """Loss from ``[anchors (B, d), positives (B, d), negatives_1 (B, d), ...]``."""
        if len(embeddings) < 2:
            raise ValueError(f"need at least (anchor, positive) columns, got {len(embeddings)} column(s)")
        anchors, columns = embeddings[0], embeddings[1:]
        batch = anchors.shape[0]
        rank, world = rank_and_world() if self.gather_across_devices else (0, 1)
        if world > 1:
            columns = [gather_with_grad(column) for column in columns]
        candidates = torch.cat(columns)  # the positives of all ranks come first, in rank order
        pos_mask = torch.zeros(batch, candidates.shape[0], dtype=torch.bool, device=anchors.device)
        rows = torch.arange(batch, device=anchors.device)
        pos_mask[rows, rows + rank * batch] = True
        return masked_hcl_loss(
            anchors,
            candidates,
            pos_mask,
            ~pos_mask,
            temperature=1.0 / self.scale,
            tau_plus=self.tau_plus,
            beta=self.beta,
            detach_weights=self.detach_weights,
        )

    @property
    def temperature(self) -> float:
        return 1.0 / self.scale

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "tau_plus": self.tau_plus,
            "beta": self.beta,
            "gather_across_devices": self.gather_across_devices,
            "detach_weights": self.detach_weights,
        }

    @property
    def citation(self) -> str:
        return """
@inproceedings{robinson2021contrastive,
    title={Contrastive Learning with Hard Negative Samples},
    author={Joshua David Robinson and Ching-Yao Chuang and Suvrit Sra and Stefanie Jegelka},
    booktitle={International Conference on Learning Representations},
    year={2021},
    url={https://openreview.net/forum?id=CR1XOQ0UTh-}
}
"""


def ranking_masks(batch: int, candidates: int, rank: int, device: Any) -> tuple[Tensor, Tensor]:
    """(pos_mask, neg_mask) of ``batch`` anchors against ``candidates``: anchor i's positive is candidate
    ``i + rank * batch`` (the positives of all ranks come first, in rank order), every other candidate a negative."""
    pos_mask = torch.zeros(batch, candidates, dtype=torch.bool, device=device)
    rows = torch.arange(batch, device=device)
    pos_mask[rows, rows + rank * batch] = True
    return pos_mask, ~pos_mask


class ObjectiveRankingLoss(nn.Module):
    """Any registered contrastive objective as a sentence-transformers loss: in-batch negatives, ``t = 1/scale``.

    The columns are those of ``MultipleNegativesRankingLoss``; the masked form of the objective's family
    (``common.objectives``) scores each anchor against every column's candidates, its own positive marked.

    Args:
        model: the ``SentenceTransformer`` being trained.
        objective: a registered objective with a masked form (not a graph-only estimator).
        scale: inverse temperature of the cosine similarities.
    """

    def __init__(self, model: nn.Module, objective: Objective, scale: float = 20.0) -> None:
        super().__init__()
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.model, self.objective, self.scale = model, objective, float(scale)
        self.loss = build(objective, temperature=1.0 / scale)

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        embeddings = [self.model(features)["sentence_embedding"] for features in sentence_features]
        return self.compute_loss_from_embeddings(embeddings, labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None = None) -> Tensor:
        """Loss from ``[anchors (B, d), positives (B, d), negatives_1 (B, d), ...]``."""
        if len(embeddings) < 2:
            raise ValueError(f"need at least (anchor, positive) columns, got {len(embeddings)} column(s)")
        anchors, candidates = embeddings[0], torch.cat(embeddings[1:])
        return self.loss.masked(anchors, candidates, *ranking_masks(len(anchors), len(candidates), 0, anchors.device))

    def get_config_dict(self) -> dict[str, Any]:
        return {"objective": str(self.objective), "scale": self.scale}
