"""Every default of the sentence pipeline in one place, with the ``quick`` and ``paper`` profiles beside it.

``quick`` is sized from the measured speeds of the 2-core CPU in ``shared/ENV.md`` (one quick-thought
step with 400 sentences of 30 tokens: ~0.8 s at hidden 300, ~7 s at hidden 1200): three methods
plus the evaluation of five encoders fit in about an hour. ``paper`` follows Logeswaran & Lee (2018):
embedding 300, hidden 1200, batch 400, context of one sentence on each side.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from common.errors import UserError
from common.objectives import Objective
from common.settings import option

#: The paper's three quick-thought runs; any registered objective runs by its spec (``--objective``).
DEFAULT_OBJECTIVES = ("plain", "debiased", "hard")
#: Row ids of registry families (quick-thought's own loss, NT-Xent, has been ``qt-plain`` since the first records).
ALIASES = {"ntxent": "plain"}


def objective_tag(objective: Objective) -> str:
    """The objective's part of a row id and a checkpoint's file name (``plain``, ``hard``, ``hard-beta=2``), and
    only that: what a reader sees, on the page and in log lines, is ``Objective.label()``."""
    return objective.label(ALIASES).replace(" ", "-")

TASKS = ("MR", "CR", "SUBJ", "MPQA", "TREC", "MRPC")


@dataclass(frozen=True)
class CorpusConfig:
    """How the book corpus becomes token ids (part of the cache key)."""

    vocab_size: int = 20000
    val_books: int = 6  # whole books held out for validation, chosen by a fixed seed
    min_tokens: int = 2  # shorter "sentences" (chapter numbers, stray marks) are dropped
    split_seed: int = 0


@dataclass(frozen=True)
class ModelConfig:
    embed_dim: int = 300
    hidden_dim: int = 300


@dataclass(frozen=True)
class TrainConfig:
    """Quick-thought training; every field is also a flag of ``train`` and ``run``."""

    batch_size: int = option(400, "consecutive sentences per step (Logeswaran & Lee use 400)", low=3)
    max_tokens: int = option(30, "sentences are truncated to this many tokens", low=1)
    steps: int = option(800, "optimiser steps", low=1)
    # 4x Logeswaran & Lee's 5e-4: in a short CPU run that lifted neighbour accuracy ~2x sooner
    lr: float = option(2e-3, "Adam learning rate", above=0)
    grad_clip: float = option(5.0, "gradient-norm clip", above=0)
    temperature: float = option(0.1, "temperature of the objective", above=0)
    train_books: int = option(0, "use only the first N training books, a corpus slice (0: all)", low=0)
    val_batches: int = option(20, "validation batches of batch-size consecutive held-out sentences", low=1)
    eval_every: int = option(200, "steps between validation scores", low=1)
    checkpoint_every: int = option(100, "steps between checkpoints", low=1)


@dataclass(frozen=True)
class EvalConfig:
    """SentEval protocol: 10-fold outer CV; L2 strength by inner CV on the training part."""

    kfold: int = 10
    inner_kfold: int = 5
    c_grid: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)  # C = 1 / L2 strength of logistic regression
    max_iter: int = 1000  # lbfgs steps per C; warm-started along the grid, every fit converges well within it
    batch_size: int = 256  # sentences per encoder call
    seed: int = 1111


#: The MiniLM fine-tune's default objective: sentence-transformers' MultipleNegativesRankingLoss is NT-Xent (its
#: ``in_batch_negatives`` hardness is the registry's ``hardness`` family); any registered objective runs by its spec.
FINETUNE_OBJECTIVE = "mnrl"


@dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tuning of all-MiniLM-L6-v2 on (sentence, next sentence) pairs of the training books; every field is
    also a flag of ``st-finetune``.

    A sentence and its successor are the quick-thought positives: the shipped model does not
    already place them together (unlike a sentence and its dropout copy, loss ~1e-4), so the
    loss starts near log(batch) / 2 and has something to learn.
    """

    steps: int = option(100, "optimiser steps (~4 s each on one contended core)", low=1)
    # 32 anchors, 32 positives, 31 in-batch negatives each; two pairs are the fewest with a negative
    batch_size: int = option(32, "(sentence, next sentence) pairs per step", low=2)
    lr: float = option(2e-5, "AdamW learning rate", above=0)
    scale: float = option(20.0, "inverse temperature of every loss (MultipleNegativesRankingLoss's default)", above=0)
    max_seq_length: int = option(48, "sentences are truncated to this many word pieces", low=1, high=512)
    curve_every: int = option(10, "the loss curve in the record: mean loss of each window of this many steps", low=1)


@dataclass(frozen=True)
class SentenceConfig:
    profile: str = "quick"
    seed: int = 0
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PROFILES: dict[str, SentenceConfig] = {
    "quick": SentenceConfig(),
    "paper": SentenceConfig(
        profile="paper",
        corpus=CorpusConfig(vocab_size=50000),
        model=ModelConfig(embed_dim=300, hidden_dim=1200),
        train=TrainConfig(steps=50000, lr=5e-4, eval_every=2000, checkpoint_every=1000, val_batches=50),
        eval=EvalConfig(inner_kfold=10, c_grid=(0.001, 0.01, 0.1, 1.0, 10.0, 100.0), max_iter=1000),
        finetune=FinetuneConfig(steps=2000, batch_size=64),
    ),
}


def get_config(profile: str, **overrides: dict[str, Any]) -> SentenceConfig:
    """Profile ``profile`` with sections replaced field by field, e.g. ``train={"steps": 10}`` (``None`` = keep)."""
    if profile not in PROFILES:
        raise UserError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    config = PROFILES[profile]
    changes = {}
    for section, values in overrides.items():
        values = {k: v for k, v in values.items() if v is not None}
        if values:
            changes[section] = dataclasses.replace(getattr(config, section), **values)
    return dataclasses.replace(config, **changes)
