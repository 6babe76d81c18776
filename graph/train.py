"""Train one InfoGraph model with the local-global objective and score its embeddings."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from common.errors import UserError
from common.objectives import Objective, build, check_negatives
from common.seed import seed_everything
from graph.config import Cell
from graph.data import GraphData
from graph.evaluate import svm_accuracy
from graph.model import InfoGraph
from graph.sparse import SparseMatrix


def step_loss(
    model: InfoGraph, objective: Objective, *, temperature: float | None = None, compile: bool = False
) -> Callable[..., Tensor]:
    """``f(x, neighbours, batch, num_graphs, rows, row_counts)`` -> the objective's local-global loss of one batch.

    ``jsd`` objectives use InfoGraph's Jensen-Shannon estimator; every contrastive one the InfoNCE
    estimator (each node's own graph its positive, the batch's other graphs its negatives) at ``temperature``.

    ``rows`` and ``row_counts`` (or None, None) score one node per class of nodes with equal
    embeddings, weighted by the class size (:mod:`graph.wl`): the same loss and gradients.

    With ``compile``, torch.compile fuses the element-wise work around the matmuls (one
    compilation with dynamic node counts, about a minute on CPU; the sparse neighbour sums
    stay eager). On our 2-core CPUs the compiled step is no faster than eager
    (tables/graph_epoch_speed.md); it is there for GPUs.
    """
    loss_fn = build(objective, temperature=1.0 if temperature is None else temperature)

    def loss(x: Tensor, neighbours: SparseMatrix, batch: Tensor, num_graphs: int,
             rows: Tensor | None = None, row_counts: Tensor | None = None) -> Tensor:
        local, graph = model(x, neighbours, batch, num_graphs, rows)
        own = batch if rows is None else batch.index_select(0, rows)
        return loss_fn.local_global(local, graph, own, counts=row_counts)

    return torch.compile(loss, dynamic=True) if compile else loss


def train_epoch(step_loss_of: Callable[..., Tensor], optimizer: torch.optim.Optimizer, batches: list) -> Tensor:
    """One pass of optimiser steps over ``batches``; the summed loss stays on the device (no host sync)."""
    total = torch.zeros((), device=optimizer.param_groups[0]["params"][0].device)
    for batch in batches:
        optimizer.zero_grad(set_to_none=True)
        rows, counts = getattr(batch, "rows", None), getattr(batch, "row_counts", None)  # absent: score every node
        step_loss = step_loss_of(batch.x, batch.neighbours, batch.batch, batch.num_graphs, rows, counts)
        step_loss.backward()
        optimizer.step()
        total += step_loss.detach()
    return total


def score(model: InfoGraph, batches: list, *, seed: int, n_jobs: int) -> float:
    """SVM accuracy in % of the model's frozen graph embeddings (NaN when an embedding is not finite)."""
    embeddings, labels = model.embed(batches)
    if not np.isfinite(embeddings).all():
        return float("nan")
    return 100 * svm_accuracy(embeddings, labels, seed=seed, n_jobs=n_jobs)


def train_and_evaluate(
    cell: Cell,
    data: GraphData,
    *,
    device: str = "cpu",
    n_jobs: int = 1,
    progress: bool = True,
    compile: bool = False,
    eval_at: tuple[int, ...] = (),
    distinct_nodes: bool = True,
) -> dict:
    """Run ``cell`` and return its metrics (accuracy in %, seconds per epoch, ...).

    ``distinct_nodes`` scores one node per class of nodes the encoder cannot tell apart
    (:mod:`graph.wl`); the loss and its gradients are those of every node, computed once per class.

    ``eval_at`` also scores the embeddings after those epochs (``accuracy_at``, keyed by epoch,
    the final epoch included). Scoring neither consumes random numbers nor changes the model,
    so the final accuracy is the same with or without it.
    """
    seed_everything(cell.seed)
    batches = data.batches(cell.batch_size, cell.seed, device, distinct_depth=cell.layers if distinct_nodes else 0)
    trainable = [b for b in batches if b.num_graphs >= 2]  # a lone graph has no negatives
    if cell.objective is not None and cell.temperature is not None:
        try:  # InfoNCE estimator: every node has its batch's other graphs as negatives
            check_negatives(cell.objective, {b.num_graphs - 1 for b in trainable}, temperature=cell.temperature)
        except ValueError as err:
            raise UserError(f"{cell.dataset}: {err}") from None
    model = InfoGraph(data.num_features, cell.hidden, cell.layers).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cell.lr)
    step_loss_of = (step_loss(model, cell.objective, temperature=cell.temperature, compile=compile)
                    if cell.objective is not None else None)
    epoch_seconds, loss, diverged, accuracy_at = [], float("nan"), False, {}
    bar = tqdm(range(1, cell.epochs + 1), desc=f"{cell.dataset} {cell.label} r{cell.repeat}", disable=not progress, leave=False)
    for epoch in bar:
        start = time.perf_counter()
        loss = (train_epoch(step_loss_of, optimizer, trainable) / len(trainable)).item()  # one host sync per epoch
        epoch_seconds.append(time.perf_counter() - start)
        bar.set_postfix(loss=f"{loss:.4f}", s_per_epoch=f"{epoch_seconds[-1]:.2f}")
        if not math.isfinite(loss):
            diverged = True
            break
        if epoch in eval_at and epoch < cell.epochs:
            accuracy_at[str(epoch)] = score(model, batches, seed=cell.seed, n_jobs=n_jobs)
    start = time.perf_counter()
    accuracy = score(model, batches, seed=cell.seed, n_jobs=n_jobs)
    if eval_at and cell.epochs and not diverged:
        accuracy_at[str(cell.epochs)] = accuracy
    return {
        "accuracy": accuracy,
        "seconds_per_epoch": sum(epoch_seconds) / len(epoch_seconds) if epoch_seconds else 0.0,
        "train_seconds": sum(epoch_seconds),
        "eval_seconds": time.perf_counter() - start,
        "final_loss": loss,
        "diverged": diverged or not math.isfinite(accuracy),
        **({"accuracy_at": accuracy_at} if accuracy_at else {}),
    }


def cell_config(cell: Cell, data: GraphData, device: str) -> dict:
    return {**cell.to_config(), "num_graphs": len(data.graphs), "num_features": data.num_features, "device": device}
