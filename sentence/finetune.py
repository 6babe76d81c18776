"""SimCSE-style unsupervised fine-tuning of all-MiniLM-L6-v2 with the plain or the hard ranking loss.

Each corpus sentence is its own positive: the two forward passes see different dropout masks
(Gao, Yao, Chen, "SimCSE", EMNLP 2021), and the rest of the batch are the negatives. The loop is
written out (rather than ``SentenceTransformerTrainer``) so it needs no ``accelerate`` and shares
the pipeline's atomic checkpoints and exact resume.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.checkpoint import load_checkpoint, save_checkpoint
from common.cli import UserError
from common.seed import seed_everything
from sentence.config import SentenceConfig
from sentence.corpus import Corpus
from sentence.encoders import load_minilm
from sentence.st_loss import HardNegativesRankingLoss

LOSSES = ("plain", "hard")
_REQUIRED = ("kind", "model", "optimizer", "step", "config", "loss", "done")
MIN_WORDS = 4  # very short lines (headings, "Yes.") make trivial pairs


def training_sentences(corpus: Corpus, count: int, seed: int) -> list[str]:
    """``count`` distinct training-book sentences of at least ``MIN_WORDS`` tokens, in a seeded random order.

    A prefix of one fixed permutation, so raising the step count on resume keeps the batches already seen.
    """
    index = np.concatenate([np.arange(a, b) for a, b in corpus.split_ranges(val=False)])
    index = index[np.diff(corpus.offsets)[index] >= MIN_WORDS]
    if len(index) < count:
        raise UserError(f"the training books hold {len(index)} usable sentences, fewer than the {count} requested")
    chosen = np.random.default_rng(seed).permutation(index)[:count]
    return [corpus.sentence_text(int(k)) for k in chosen]


def finetune(config: SentenceConfig, loss_name: str, corpus: Corpus, checkpoint_path: Path, *,
             progress: bool = True) -> dict[str, Any]:
    """Fine-tune (or resume) the shipped MiniLM; returns the final checkpoint state."""
    from tqdm import tqdm

    if loss_name not in LOSSES:
        raise UserError(f"unknown loss {loss_name!r}; choose one of {', '.join(LOSSES)}")
    fc = config.finetune
    tau_plus, beta = (fc.tau_plus, fc.beta) if loss_name == "hard" else (0.0, 0.0)
    seed_everything(config.seed)
    model = load_minilm()
    model.max_seq_length = fc.max_seq_length
    loss_fn = HardNegativesRankingLoss(model, scale=fc.scale, tau_plus=tau_plus, beta=beta)
    optimizer = torch.optim.AdamW(model.parameters(), lr=fc.lr)
    step, wall = 0, 0.0
    if checkpoint_path.exists():
        state = load_checkpoint(checkpoint_path, required=_REQUIRED)
        saved = {k: v for k, v in state["config"]["finetune"].items() if k != "steps"}
        if state["loss"] != loss_name or saved != {k: v for k, v in vars(fc).items() if k != "steps"}:
            raise UserError(f"checkpoint {checkpoint_path} was written for other settings; choose another --out or delete it")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        step, wall = state["step"], state["wall_time_s"]
        if step >= fc.steps:
            return state
    sentences = training_sentences(corpus, fc.steps * fc.batch_size, config.seed)
    model.train()
    device = model.device
    started = time.perf_counter() - wall
    bar = tqdm(total=fc.steps, initial=step, desc=f"MiniLM {loss_name}", disable=not progress, dynamic_ncols=True)
    while step < fc.steps:
        batch = sentences[step * fc.batch_size : (step + 1) * fc.batch_size]
        features = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in model.preprocess(batch).items()}
        loss = loss_fn([features, dict(features)])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if step % 50 == 0 or step == fc.steps:
            state = {
                "kind": "minilm-finetune", "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "step": step, "config": config.to_dict(), "loss": loss_name, "done": step >= fc.steps,
                "torch_rng": torch.get_rng_state(), "wall_time_s": time.perf_counter() - started,
                "last_loss": loss.item(),
            }
            save_checkpoint(checkpoint_path, state)
    bar.close()
    model.eval()
    return state


def load_finetuned(state: dict[str, Any]):
    """The shipped MiniLM with a fine-tuned checkpoint's weights."""
    model = load_minilm()
    model.load_state_dict(state["model"])
    return model.eval()
