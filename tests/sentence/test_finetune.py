"""Fine-tune data and checks: neighbouring pairs, the floor fraction, resume refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from common.cli import UserError
from sentence.config import CorpusConfig
from sentence.corpus import load_corpus
from sentence.finetune import check_resume, floor_fraction, training_pairs


def test_pairs_are_a_sentence_and_its_successor_in_one_training_book(tiny_data: Path) -> None:
    corpus = load_corpus(CorpusConfig(val_books=1), verbose=False)
    firsts, seconds = training_pairs(corpus, 20, seed=3)
    assert len(set(firsts)) == 20
    for first, second in zip(firsts, seconds, strict=True):
        book, number = first.split()[1], int(first.split()[6])
        assert second == f"Book {book} says that sentence number {number + 1} is here."
    assert training_pairs(corpus, 20, seed=3) == (firsts, seconds)
    with pytest.raises(UserError, match="fewer than"):
        training_pairs(corpus, 10_000, seed=0)


def test_floor_fraction_follows_the_clamp() -> None:
    anchors = torch.eye(4)
    assert floor_fraction(anchors, anchors, scale=20.0, tau_plus=0.1, beta=0.0) == 1.0  # positive cos 1, negatives 0
    assert floor_fraction(anchors, anchors, scale=20.0, tau_plus=0.0, beta=1.0) == 0.0  # no debiasing, no floor
    # a positive no closer than the negatives: E[e^{s/t}] = 1 > tau_plus e^0 + (1 - tau_plus) e^{-1/t}
    flat = torch.nn.functional.normalize(torch.ones(4, 3) + 1e-3 * torch.arange(12.0).view(4, 3), dim=1)
    assert floor_fraction(flat, flat, scale=1.0, tau_plus=0.1, beta=0.0) == 0.0


def test_resume_with_another_seed_is_refused_naming_the_field(tmp_path: Path) -> None:
    saved = {"seed": 0, "variant": "hard", "lr": 2e-5}
    check_resume(tmp_path / "x.pt", saved, dict(saved))
    with pytest.raises(UserError, match=r"seed 0 != 1") as err:
        check_resume(tmp_path / "x.pt", saved, {**saved, "seed": 1})
    assert "variant" not in str(err.value)
    with pytest.raises(UserError, match=r"seed 0 != 2; variant 'hard' != 'plain'"):
        check_resume(tmp_path / "x.pt", saved, {**saved, "seed": 2, "variant": "plain"})
