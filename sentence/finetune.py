"""Fine-tuning of all-MiniLM-L6-v2 on neighbouring book sentences with any registered objective: NT-Xent and the
``hardness`` family run as sentence-transformers' MultipleNegativesRankingLoss (the library's own code), every other
family through its masked form.

A pair is (sentence, next sentence of the same training book), the quick-thought positives; the
other positives of the batch are the negatives. Every objective sees the same pairs in the same
order for a seed. The loop is written out (rather than ``SentenceTransformerTrainer``) so it needs
no ``accelerate`` and shares the pipeline's atomic checkpoints and exact resume; it keeps the loss
curve and, for debiased losses, the fraction of anchors whose negative term sits on its floor.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from common.checkpoint import save_checkpoint
from common.errors import UserError
from common.objectives import Objective, from_dict
from common.resume import resume_checkpoint
from common.seed import seed_everything
from sentence.config import SentenceConfig
from sentence.corpus import Corpus
from sentence.encoders import load_minilm
from sentence.identity import FINETUNE_RUNTIME, identity, row_id

_REQUIRED = ("kind", "model", "optimizer", "step", "config", "done", "curve")
MIN_WORDS = 4  # very short lines (headings, "Yes.") make trivial pairs


def training_pairs(corpus: Corpus, count: int, seed: int) -> tuple[list[str], list[str]]:
    """``count`` (sentence, next sentence) pairs from the training books, both of at least ``MIN_WORDS``
    tokens, in a seeded random order; distinct anchors.

    A prefix of one fixed permutation, so raising the step count on resume keeps the batches already seen.
    """
    index = np.concatenate([np.arange(a, b - 1) for a, b in corpus.split_ranges(val=False)])  # k and k + 1 in one book
    words = np.diff(corpus.offsets)
    index = index[(words[index] >= MIN_WORDS) & (words[index + 1] >= MIN_WORDS)]
    if len(index) < count:
        raise UserError(f"the training books hold {len(index)} usable sentence pairs, fewer than the {count} requested")
    chosen = np.random.default_rng(seed).permutation(index)[:count]
    return [corpus.sentence_text(int(k)) for k in chosen], [corpus.sentence_text(int(k) + 1) for k in chosen]


def make_loss(model, objective: Objective, scale: float) -> torch.nn.Module:
    """The loss module of ``objective`` at temperature ``1 / scale``.

    NT-Xent is sentence-transformers' MultipleNegativesRankingLoss and ``hardness`` its ``in_batch_negatives``
    hardness (``hardness_strength`` = alpha): both run as the library's code, as every fine-tune recorded so far did.
    """
    if objective.family.local_global:
        raise UserError(f"objective {objective} is a graph local-global estimator; st-finetune needs a contrastive one")
    if objective.name in ("ntxent", "hardness"):
        from sentence_transformers.losses import MultipleNegativesRankingLoss

        hardness = {"hardness_mode": "in_batch_negatives", "hardness_strength": float(objective["alpha"])} \
            if objective.name == "hardness" else {"hardness_mode": None, "hardness_strength": 0.0}
        return MultipleNegativesRankingLoss(model, scale=scale, **hardness)
    from sentence.st_loss import ObjectiveRankingLoss

    return ObjectiveRankingLoss(model, objective, scale=scale)


@torch.no_grad()
def floor_fraction(anchors: Tensor, positives: Tensor, scale: float, tau_plus: float, beta: float) -> float:
    """Fraction of anchors whose debiased negative term is clamped to its floor ``N e^{-1/t}`` (zero gradient
    through the negatives): where ``E_w[e^{s/t}] - tau_plus e^{s+/t} <= (1 - tau_plus) e^{-1/t}``."""
    if tau_plus == 0.0:
        return 0.0
    a = torch.nn.functional.normalize(anchors.double(), dim=1)
    p = torch.nn.functional.normalize(positives.double(), dim=1)
    logits = scale * a @ p.T
    positive = logits.diagonal().clone()
    own = torch.eye(len(a), dtype=torch.bool, device=a.device)  # masked after scaling: 0 * -inf would be nan
    log_mean = (torch.logsumexp(((beta + 1) * logits).masked_fill(own, float("-inf")), dim=1)
                - torch.logsumexp((beta * logits).masked_fill(own, float("-inf")), dim=1))
    estimate = log_mean.exp() - tau_plus * positive.exp()
    return float((estimate <= (1 - tau_plus) * math.exp(-scale)).double().mean())


def checkpoint_identity(config: SentenceConfig, objective: Objective) -> dict[str, Any]:
    """The checkpoint's ``config``: the pipeline's one identity (``sentence.identity``) of this fine-tune; a resume
    must share all of it but :data:`sentence.identity.FINETUNE_RUNTIME` (seed, objective, corpus, fine-tune settings)."""
    return identity({"row": row_id("minilm", objective), "settings": config.to_dict()})


def finetune(config: SentenceConfig, objective: Objective, corpus: Corpus, checkpoint_path: Path, *,
             progress: bool = True) -> dict[str, Any]:
    """Fine-tune (or resume) the shipped MiniLM with ``objective``; returns the final checkpoint state."""
    from tqdm import tqdm

    fc, arguments = config.finetune, objective.arguments()
    settings = checkpoint_identity(config, objective)
    state = resume_checkpoint(checkpoint_path, settings, runtime=FINETUNE_RUNTIME, required=_REQUIRED,
                              upgrade=identity)  # refused before loading
    if state is not None and state["step"] > fc.steps:
        raise UserError(f"{checkpoint_path} has {state['step']} steps, more than the {fc.steps} asked for; "
                        "use another output path")
    if state is not None and state["step"] == fc.steps:
        return state
    seed_everything(config.seed)
    model = load_minilm()
    model.max_seq_length = fc.max_seq_length
    loss_fn = make_loss(model, objective, fc.scale)
    optimizer = torch.optim.AdamW(model.parameters(), lr=fc.lr)
    step, wall, curve, window = 0, 0.0, [], []
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        step, wall, curve = state["step"], state["wall_time_s"], state["curve"]
    anchors, positives = training_pairs(corpus, fc.steps * fc.batch_size, config.seed)
    model.train()
    device = model.device
    started = time.perf_counter() - wall
    bar = tqdm(total=fc.steps, initial=step, desc=f"MiniLM {objective.label()}", disable=not progress, dynamic_ncols=True)
    while step < fc.steps:
        batch = slice(step * fc.batch_size, (step + 1) * fc.batch_size)
        columns = [{k: v.to(device) if isinstance(v, Tensor) else v for k, v in model.preprocess(texts[batch]).items()}
                   for texts in (anchors, positives)]
        embeddings = [model(features)["sentence_embedding"] for features in columns]
        loss = loss_fn.compute_loss_from_embeddings(embeddings, None)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        floor = floor_fraction(*embeddings, fc.scale, float(arguments.get("tau_plus", 0.0)),
                               float(arguments.get("beta", 0.0)))
        window.append((loss.item(), floor))
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if step == 1 or step % fc.curve_every == 0 or step == fc.steps:
            # the first step alone (where the loss starts), then the mean of each window
            curve.append({"step": step, "loss": float(np.mean([w[0] for w in window])),
                          "floor_fraction": float(np.mean([w[1] for w in window]))})
            window = []
        if step % 50 == 0 or step == fc.steps:
            state = {
                "kind": "minilm-finetune", "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "step": step, "config": settings, "objective": objective.to_dict(),
                "done": step >= fc.steps, "torch_rng": torch.get_rng_state(),
                "wall_time_s": time.perf_counter() - started, "curve": curve,
            }
            save_checkpoint(checkpoint_path, state)
    bar.close()
    model.eval()
    return state


def curve_metrics(state: dict[str, Any]) -> dict[str, Any]:
    """Loss at the first step and over the last window, the mean floor fraction, and the whole curve."""
    curve = state["curve"]
    return {"loss_first": curve[0]["loss"], "loss_last": curve[-1]["loss"],
            "floor_fraction": float(np.mean([c["floor_fraction"] for c in curve])), "loss_curve": curve}


def objective_of(state: dict[str, Any]) -> Objective:
    """The objective a fine-tune checkpoint was trained with (an older one names its variant)."""
    from common.records import legacy_objective

    config = state["config"]
    return from_dict(state.get("objective") or config.get("objective") or legacy_objective("sentence", config))


def load_finetuned(state: dict[str, Any]):
    """The shipped MiniLM with a fine-tuned checkpoint's weights."""
    model = load_minilm()
    model.load_state_dict(state["model"])
    return model.eval()
