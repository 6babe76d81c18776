"""Fine-tune data and checks: neighbouring pairs, the floor fraction, its flags (from FinetuneConfig), resume refusals."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from common.checkpoint import load_checkpoint
from common.errors import UserError
from sentence.__main__ import main
from sentence.config import PROFILES, CorpusConfig, FinetuneConfig
from sentence.corpus import load_corpus
from sentence.finetune import floor_fraction, training_pairs
from tests.sentence.conftest import book_sentences, write_book
from tests.sentence.test_cli import run_cli


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


def _eight_books(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Eight tiny books: the quick profile holds six out for validation, two train (58 pairs)."""
    folder = tmp_path / "data" / "books" / "gutenberg"
    folder.mkdir(parents=True)
    for book in range(8):
        write_book(folder, f"pg{book}__Author__Title", book_sentences(book, 30))
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HARDNEG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # main() sets them; monkeypatch restores them afterwards
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    return tmp_path / "data"


@pytest.mark.parametrize(("flags", "message"), [
    (("--lr", "nan"), "--lr must be a finite number, got nan"),
    (("--batch-size", "1"), "--batch-size must be >= 2, got 1"),
    (("--scale", "0"), "--scale must be > 0, got 0.0"),
    (("--max-seq-length", "600"), "--max-seq-length must be <= 512, got 600"),
    (("--curve-every", "0"), "--curve-every must be >= 1, got 0"),
    (("--steps", "ten"), "invalid int value: 'ten'"),
])
def test_st_finetune_bad_setting_is_one_line_and_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        flags: tuple[str, str], message: str) -> None:
    data = _eight_books(tmp_path, monkeypatch)
    result = run_cli("st-finetune", "--objective", "mnrl", "--no-eval", *flags, data=data, cache=tmp_path / "cache")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def test_st_finetune_help_lists_every_config_field_with_both_profiles(tmp_path: Path) -> None:
    result = run_cli("st-finetune", "--help", data=tmp_path, cache=tmp_path / "cache")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for field in dataclasses.fields(FinetuneConfig):
        flag = "--" + field.name.replace("_", "-")
        assert flag in text
        values = [getattr(p.finetune, field.name) for p in PROFILES.values()]
        assert f"[{' / '.join(map(str, values))}]" in text
    assert "optimiser steps (~4 s each on one contended core) [100 / 2000] (>= 1)" in text


def test_st_finetune_resume_refuses_a_changed_seed_or_setting_naming_them(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _eight_books(tmp_path, monkeypatch)
    out = tmp_path / "ft.pt"
    base = ["st-finetune", "--objective", "debiased", "--batch-size", "2", "--max-seq-length", "8", "--threads", "1",
            "--no-eval", "--no-progress", "--out", str(out), "--records", str(tmp_path / "records.jsonl")]
    assert main([*base, "--steps", "1"]) == 0
    first = load_checkpoint(out)
    assert first["step"] == 1 and first["config"]["settings"]["seed"] == 0 and first["objective"]["params"]["tau_plus"] == 0.1
    with pytest.raises(UserError, match=r"ft\.pt was written with other settings \(settings\.seed\)"):
        main([*base, "--steps", "2", "--seed", "1"])
    with pytest.raises(UserError, match=r"\(settings\.finetune\.lr, settings\.seed\)"):
        main([*base, "--steps", "2", "--seed", "2", "--lr", "1e-4"])
    with pytest.raises(UserError, match=r"\(objective\)"):
        main([*base[:1], "--objective", "hard:tau_plus=0.1", *base[3:], "--steps", "2"])
    assert load_checkpoint(out)["step"] == 1  # nothing refused was written
    assert main([*base, "--steps", "2"]) == 0  # more steps of the same run: resumed
    second = load_checkpoint(out)
    assert second["step"] == 2 and [c["step"] for c in second["curve"]] == [1, 2]
    with pytest.raises(UserError, match="has 2 steps, more than the 1 asked for"):
        main([*base, "--steps", "1"])
