"""Quick-thought training with the plain, debiased and hard objectives of the loss core.

A step takes ``batch_size`` consecutive training sentences. Anchor i is f(s_i); the candidates
are g(s_j) for every j in the batch; the positives of i are i-1 and i+1 when they come from
the same book, and every other sentence of the batch except i itself is a negative. All three
objectives run through their masked form (:meth:`common.objectives.ObjectiveLoss.masked`), any registered
one by name.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from common.checkpoint import load_checkpoint, save_checkpoint
from common.errors import UserError
from common.objectives import Objective, ObjectiveLoss, build, check_negatives
from common.resume import resume_checkpoint
from common.seed import seed_everything
from sentence.config import SentenceConfig
from sentence.corpus import Corpus
from sentence.identity import QUICK_THOUGHT_RUNTIME, identity, row_id
from sentence.model import QuickThought, gather_padded

_REQUIRED = ("kind", "model", "optimizer", "step", "config", "objective", "generator", "tokenizer_json", "history", "done")


def neighbour_masks(book_ids: Tensor) -> tuple[Tensor, Tensor]:
    """Positive and negative masks ``(B, B)`` for a batch of consecutive sentences.

    ``book_ids[i]`` is the book of sentence i; neighbours across a book boundary are not
    positives (they were never adjacent in any text). Self is neither positive nor negative.
    """
    size = book_ids.shape[0]
    index = torch.arange(size, device=book_ids.device)
    adjacent = (index[:, None] - index[None, :]).abs() == 1
    pos_mask = adjacent & (book_ids[:, None] == book_ids[None, :])
    neg_mask = ~pos_mask & ~torch.eye(size, dtype=torch.bool, device=book_ids.device)
    return pos_mask, neg_mask


def split_stream(corpus: Corpus, val: bool, max_books: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sentence indices of the training (or validation) books back to back, and each one's book number."""
    ranges = corpus.split_ranges(val, max_books)
    index = np.concatenate([np.arange(a, b) for a, b in ranges])
    books = np.repeat(np.arange(len(ranges)), [b - a for a, b in ranges])
    return index, books


def _batch(corpus: Corpus, index: np.ndarray, books: np.ndarray, start: int, size: int, max_tokens: int):
    tokens, lengths = gather_padded(corpus.tokens, corpus.offsets, index[start : start + size], max_tokens)
    return tokens, lengths, torch.from_numpy(books[start : start + size])


def quick_thought_loss(model: QuickThought, tokens: Tensor, lengths: Tensor, book_ids: Tensor,
                       loss_fn: ObjectiveLoss) -> Tensor:
    """The objective's masked loss on one batch of consecutive sentences (two neighbours as positives)."""
    anchors, candidates = model(tokens, lengths)
    pos_mask, neg_mask = neighbour_masks(book_ids)
    return loss_fn.masked(anchors, candidates, pos_mask, neg_mask)


@torch.no_grad()
def neighbour_accuracy(model: QuickThought, corpus: Corpus, config: SentenceConfig) -> dict[str, float]:
    """Top-1 neighbour prediction on held-out books: is the best-scoring g(s_j), j != i, a neighbour of i?

    Chance is the mean over anchors of (number of neighbours) / (batch size - 1).
    """
    train = config.train
    index, books = split_stream(corpus, val=True)
    count = min(train.val_batches, len(index) // train.batch_size)
    if count == 0:
        raise UserError(f"validation books hold {len(index)} sentences, fewer than one batch of {train.batch_size}")
    starts = np.linspace(0, len(index) - train.batch_size, count).astype(np.int64)
    was_training = model.training
    model.eval()
    hits, chance, anchors = 0.0, 0.0, 0
    for start in starts:
        tokens, lengths, book_ids = _batch(corpus, index, books, int(start), train.batch_size, train.max_tokens)
        f, g = model(tokens, lengths)
        scores = torch.nn.functional.normalize(f, dim=1) @ torch.nn.functional.normalize(g, dim=1).T
        scores.fill_diagonal_(float("-inf"))
        pos_mask, _ = neighbour_masks(book_ids)
        has_pos = pos_mask.any(dim=1)
        best = scores.argmax(dim=1)
        hits += pos_mask[torch.arange(len(best)), best][has_pos].sum().item()
        chance += (pos_mask.sum(dim=1)[has_pos] / (train.batch_size - 1)).sum().item()
        anchors += int(has_pos.sum())
    model.train(was_training)
    return {"val_neighbour_acc": hits / anchors, "val_neighbour_chance": chance / anchors}


def new_model(corpus: Corpus, config: SentenceConfig) -> QuickThought:
    return QuickThought(corpus.tokenizer().get_vocab_size(), config.model.embed_dim, config.model.hidden_dim)


def _state(model: QuickThought, optimizer: torch.optim.Optimizer, step: int, config: SentenceConfig, objective: Objective,
           generator: torch.Generator, corpus: Corpus, history: list[dict[str, float]], done: bool,
           wall: float) -> dict[str, Any]:
    """Everything a resume needs: weights, optimiser, batch-sampler and torch RNG states, the vocabulary."""
    return {
        "kind": "quick-thought",
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "config": checkpoint_identity(config, objective),
        "objective": objective.to_dict(),
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "tokenizer_json": corpus.tokenizer_json,
        "history": history,
        "done": done,
        "wall_time_s": wall,
    }


def checkpoint_identity(config: SentenceConfig, objective: Objective) -> dict[str, Any]:
    """The checkpoint's ``config``: the pipeline's one identity (``sentence.identity``) of this training, compared
    on resume."""
    return identity({"row": row_id("qt", objective), "settings": config.to_dict()})


def snapshot_path(checkpoint_path: Path, step: int) -> Path:
    """Where the weights after ``step`` are kept for ``--eval-at`` (beside the checkpoint: ``qt-hard-seed0-step200.pt``)."""
    return checkpoint_path.with_name(f"{checkpoint_path.stem}-step{step}{checkpoint_path.suffix}")


def train(
    config: SentenceConfig,
    objective: Objective,
    corpus: Corpus,
    checkpoint_path: Path,
    *,
    progress: bool = True,
    snapshots: tuple[int, ...] = (),
) -> dict[str, Any]:
    """Train (or resume) one quick-thought model; returns the final checkpoint state.

    The checkpoint is written atomically every ``checkpoint_every`` steps and at the end, so an
    interrupted run continues from its last save with the same batches and the same result.
    Raising ``steps`` and running again continues a finished run. After each step of ``snapshots`` the
    state is also written to :func:`snapshot_path` (a checkpoint of its own, for scoring the encoder then).
    """
    from tqdm import tqdm

    tc = config.train
    loss_fn = build(objective, temperature=tc.temperature)
    try:  # one or two neighbours are positives, every other sentence of the batch a negative
        check_negatives(objective, [tc.batch_size - 3, tc.batch_size - 2], temperature=tc.temperature)
    except ValueError as err:
        raise UserError(str(err)) from None
    seed_everything(config.seed)
    model = new_model(corpus, config)
    optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr)
    generator = torch.Generator().manual_seed(config.seed)
    step, history, wall = 0, [], 0.0
    state = resume_checkpoint(checkpoint_path, checkpoint_identity(config, objective), runtime=QUICK_THOUGHT_RUNTIME,
                              required=_REQUIRED, upgrade=identity)
    if state is not None:
        if state["tokenizer_json"] != corpus.tokenizer_json:
            raise UserError(f"checkpoint {checkpoint_path} uses another vocabulary than the cached corpus; delete it")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        step, history, wall = state["step"], state["history"], state.get("wall_time_s", 0.0)
        if step >= tc.steps:
            return state
    index, books = split_stream(corpus, val=False, max_books=tc.train_books)
    if len(index) < tc.batch_size:
        raise UserError(f"training books hold {len(index)} sentences, fewer than one batch of {tc.batch_size}")
    model.train()
    started = time.perf_counter() - wall
    bar = tqdm(total=tc.steps, initial=step, desc=f"quick-thought {objective.label()}", disable=not progress, dynamic_ncols=True)
    while step < tc.steps:
        start = int(torch.randint(len(index) - tc.batch_size + 1, (1,), generator=generator))
        tokens, lengths, book_ids = _batch(corpus, index, books, start, tc.batch_size, tc.max_tokens)
        loss = quick_thought_loss(model, tokens, lengths, book_ids, loss_fn)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        optimizer.step()
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if step % tc.eval_every == 0 or step == tc.steps:
            metrics = neighbour_accuracy(model, corpus, config)
            history.append({"step": step, "loss": loss.item(), **metrics})
            bar.write(f"step {step}: loss {loss.item():.4f}, val neighbour acc {metrics['val_neighbour_acc']:.4f} "
                      f"(chance {metrics['val_neighbour_chance']:.4f})")
        save = step % tc.checkpoint_every == 0 or step == tc.steps
        if save or step in snapshots:
            state = _state(model, optimizer, step, config, objective, generator, corpus, history,
                           step >= tc.steps, time.perf_counter() - started)
            if step in snapshots:
                save_checkpoint(snapshot_path(checkpoint_path, step), state)
            if save:
                save_checkpoint(checkpoint_path, state)
    bar.close()
    return state


def load_trained(checkpoint_path: Path) -> tuple[QuickThought, dict[str, Any]]:
    """A trained model and its checkpoint state (for evaluation)."""
    state = load_checkpoint(checkpoint_path, required=_REQUIRED)
    model_cfg = identity(state["config"])["settings"]["model"]
    from tokenizers import Tokenizer

    vocab = Tokenizer.from_str(state["tokenizer_json"]).get_vocab_size()
    model = QuickThought(vocab, model_cfg["embed_dim"], model_cfg["hidden_dim"])
    model.load_state_dict(state["model"])
    return model.eval(), state

