"""Training: compile, interim scores, distinct rows."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from graph.config import PROFILES
from graph.data import load_tu
from graph.model import InfoGraph
from tests.graph.conftest import HARD_JSD


def test_compiled_objective_matches_eager_in_value_and_gradient(toy_root):
    """``--compile`` must train the same model: loss and gradients agree with eager mode on varying batch sizes."""
    from graph.config import expand_cells
    from graph.train import step_loss

    data = load_tu("TOY", toy_root)
    cell = expand_cells(["TOY"], [HARD_JSD], profile="quick", seed=0,
                        settings=replace(PROFILES["quick"], repeats=1, epochs=1))[-1]
    torch.manual_seed(0)
    model = InfoGraph(data.num_features, hidden=16, layers=3)
    eager, compiled = step_loss(model, cell.objective), step_loss(model, cell.objective, compile=True)
    for batch in data.batches(10, seed=0):  # 10, 10 and 4 graphs: node counts differ, one compilation
        args = (batch.x, batch.neighbours, batch.batch, batch.num_graphs)
        grads = []
        for fn in (eager, compiled):
            model.zero_grad()
            value = fn(*args)
            value.backward()
            grads.append([p.grad.clone() for p in model.parameters()])
            if fn is eager:
                expected = value.detach()
        torch.testing.assert_close(value.detach(), expected, rtol=1e-5, atol=1e-5)
        for a, b in zip(*grads, strict=True):  # float32 sums fused in another order: compare at the tensor's scale
            torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-4 * float(a.abs().max()))


def test_scoring_interim_epochs_leaves_the_final_result_unchanged(toy_root):
    """``--eval-at`` must observe training, not change it: same final accuracy and loss, scores keyed by epoch."""
    from graph.config import expand_cells
    from graph.train import train_and_evaluate

    data = load_tu("TOY", toy_root)
    cell = expand_cells(["TOY"], [HARD_JSD], profile="quick", seed=0,
                        settings=replace(PROFILES["quick"], repeats=1, epochs=3))[-1]
    plain = train_and_evaluate(cell, data, progress=False)
    observed = train_and_evaluate(cell, data, progress=False, eval_at=(1, 3))
    assert "accuracy_at" not in plain
    assert observed["final_loss"] == plain["final_loss"] and observed["accuracy"] == plain["accuracy"]
    assert set(observed["accuracy_at"]) == {"1", "3"} and observed["accuracy_at"]["3"] == plain["accuracy"]


def test_training_with_and_without_distinct_rows_takes_the_same_first_step(toy_root):
    """One batch, one epoch: the recorded loss is the first step's, the same whichever rows are scored."""
    from graph.config import expand_cells
    from graph.train import train_and_evaluate

    data = load_tu("TOY", toy_root)
    cell = expand_cells(["TOY"], [HARD_JSD], profile="quick", seed=0,
                        settings=replace(PROFILES["quick"], repeats=1, epochs=1))[-1]
    every, distinct = (train_and_evaluate(cell, data, progress=False, distinct_nodes=flag)["final_loss"] for flag in (False, True))
    assert distinct == pytest.approx(every, rel=1e-5)
