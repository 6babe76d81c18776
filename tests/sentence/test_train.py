"""Quick-thought: neighbour masks, the masked loss against a direct formula, padding, learning."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from common.objectives import build, make_objective, parse_objective
from sentence.config import get_config
from sentence.corpus import PAD_ID, load_corpus
from sentence.model import QuickThought, gather_padded
from sentence.train import neighbour_masks, quick_thought_loss, train

HARD = parse_objective("hard")


def test_neighbour_masks_respect_book_boundaries() -> None:
    pos, neg = neighbour_masks(torch.tensor([0, 0, 0, 1, 1]))
    expected_pos = torch.tensor([
        [0, 1, 0, 0, 0],
        [1, 0, 1, 0, 0],
        [0, 1, 0, 0, 0],  # sentence 3 starts another book: not a neighbour
        [0, 0, 0, 0, 1],
        [0, 0, 0, 1, 0],
    ], dtype=torch.bool)
    assert torch.equal(pos, expected_pos)
    assert torch.equal(neg, ~expected_pos & ~torch.eye(5, dtype=torch.bool))


def direct_loss(f: np.ndarray, g: np.ndarray, pos: np.ndarray, t: float, tau: float, beta: float) -> float:
    """Robinson et al.'s estimator in float64, written from the equation: mean over anchors of the mean over positives."""
    f = f / np.linalg.norm(f, axis=1, keepdims=True)
    g = g / np.linalg.norm(g, axis=1, keepdims=True)
    sim = f @ g.T
    per_anchor = []
    for i in range(len(f)):
        negatives = [j for j in range(len(g)) if j != i and not pos[i, j]]
        n = len(negatives)
        weights = np.array([math.exp(beta * sim[i, j] / t) for j in negatives])
        weights /= weights.sum()
        reweighted = n * sum(w * math.exp(sim[i, j] / t) for w, j in zip(weights, negatives, strict=True))
        losses = []
        for p in np.flatnonzero(pos[i]):
            positive = math.exp(sim[i, p] / t)
            ng = max(n * math.exp(-1 / t), (reweighted - tau * n * positive) / (1 - tau))
            losses.append(-math.log(positive / (positive + ng)))
        if losses:
            per_anchor.append(np.mean(losses))
    return float(np.mean(per_anchor))


def test_quick_thought_loss_with_two_positives_equals_direct_formula() -> None:
    torch.manual_seed(0)
    model = QuickThought(vocab_size=30, embed_dim=8, hidden_dim=6).double()
    tokens = torch.randint(2, 30, (7, 5))
    lengths = torch.tensor([5, 3, 4, 1, 5, 2, 4])
    books = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    f, g = (x.detach().numpy() for x in model(tokens, lengths))
    pos = neighbour_masks(books)[0].numpy()
    assert pos.sum(axis=1).max() == 2
    for t, tau, beta in [(0.5, 0.0, 0.0), (0.5, 0.1, 0.0), (0.2, 0.1, 1.0), (1.0, 0.3, 2.0)]:
        loss_fn = build(make_objective("hard", tau_plus=tau, beta=beta), temperature=t)
        value = quick_thought_loss(model, tokens, lengths, books, loss_fn)
        assert abs(value.item() - direct_loss(f, g, pos, t, tau, beta)) < 1e-9, (t, tau, beta)


def test_gather_padded_truncates_and_pads() -> None:
    flat = np.array([5, 6, 7, 8, 9, 10], dtype=np.uint16)
    offsets = np.array([0, 3, 3, 6])  # the middle sentence is empty
    tokens, lengths = gather_padded(flat, offsets, np.array([2, 1, 0]), max_tokens=2)
    assert tokens.tolist() == [[8, 9], [PAD_ID, PAD_ID], [5, 6]]
    assert lengths.tolist() == [2, 1, 2]


def test_encoding_does_not_depend_on_batch_padding() -> None:
    torch.manual_seed(0)
    model = QuickThought(vocab_size=20, embed_dim=4, hidden_dim=3).eval()
    long = torch.tensor([[3, 4, 5, 6]])
    alone = model.embed(torch.tensor([[3, 4]]), torch.tensor([2]))
    padded = model.embed(torch.cat([torch.tensor([[3, 4, PAD_ID, PAD_ID]]), long]), torch.tensor([2, 4]))
    torch.testing.assert_close(alone[0], padded[0])


def test_training_learns_neighbours_and_resumes(tiny_data: Path, tmp_path: Path) -> None:
    """On a toy corpus the loss falls and a run continued from its checkpoint equals an uninterrupted one."""
    config = get_config("quick", corpus={"vocab_size": 100, "val_books": 1},
                        model={"embed_dim": 8, "hidden_dim": 16},
                        train={"batch_size": 12, "steps": 40, "lr": 1e-2, "eval_every": 40, "checkpoint_every": 20,
                               "val_batches": 2})
    corpus = load_corpus(config.corpus, verbose=False)
    torch.manual_seed(0)
    full = train(config, HARD, corpus, tmp_path / "full.pt", progress=False)
    assert full["step"] == 40 and full["done"]
    assert full["history"][-1]["loss"] < math.log(11) - 0.3, full["history"]
    half = get_config("quick", corpus={"vocab_size": 100, "val_books": 1}, model={"embed_dim": 8, "hidden_dim": 16},
                      train={"batch_size": 12, "steps": 20, "lr": 1e-2, "eval_every": 40, "checkpoint_every": 20,
                             "val_batches": 2})
    train(half, HARD, corpus, tmp_path / "resumed.pt", progress=False)
    resumed = train(config, HARD, corpus, tmp_path / "resumed.pt", progress=False)
    for name, tensor in full["model"].items():
        torch.testing.assert_close(resumed["model"][name], tensor, msg=name)
