"""Graph pipeline: data loading, masks, model shapes, evaluator determinism, CLI errors and resume."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from common.cli import UserError
from common.local_global import local_global_loss
from common.objectives import make_objective
from common.stats import t_threshold
from graph.config import PROFILES
from graph.data import load_tu
from graph.evaluate import svm_accuracy
from graph.model import InfoGraph

REPO = Path(__file__).resolve().parents[2]
HARD_JSD = make_objective("jsd", tau_plus=0.5, beta=1.0)
STAGED = REPO.parent / "shared" / "data"


def write_toy_tu(root: Path, name: str = "TOY", graphs: int = 24, seed: int = 0) -> Path:
    """A small TU-format data set: rings and stars of random sizes, labelled by shape."""
    rng = np.random.default_rng(seed)
    raw = root / "tu" / name / "raw"
    raw.mkdir(parents=True)
    edges, indicator, labels, offset = [], [], [], 0
    for g in range(graphs):
        n, star = int(rng.integers(4, 9)), g % 2
        pairs = [(0, j) for j in range(1, n)] if star else [(j, (j + 1) % n) for j in range(n)]
        for a, b in pairs:
            edges += [(a + offset + 1, b + offset + 1), (b + offset + 1, a + offset + 1)]
        indicator += [g + 1] * n
        labels.append(star)
        offset += n
    (raw / f"{name}_A.txt").write_text("".join(f"{a}, {b}\n" for a, b in edges))
    (raw / f"{name}_graph_indicator.txt").write_text("".join(f"{i}\n" for i in indicator))
    (raw / f"{name}_graph_labels.txt").write_text("".join(f"{y}\n" for y in labels))
    return root


@pytest.fixture
def toy_root(tmp_path, monkeypatch):
    monkeypatch.setenv("HARDNEG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HARDNEG_OFFLINE", "1")
    return write_toy_tu(tmp_path / "data")


def test_degree_features_match_a_loop_count(toy_root):
    data = load_tu("TOY", toy_root)
    assert len(data.graphs) == 24 and set(data.labels.tolist()) == {0, 1}
    for graph in data.graphs:
        degree = [0] * graph.num_nodes
        for source in graph.edge_index[0].tolist():
            degree[source] += 1
        assert graph.x.argmax(dim=1).tolist() == degree
        assert graph.x.shape[1] == data.num_features == 8  # stars of 8 nodes: max degree 7


def test_batches_are_fixed_by_seed_and_masks_equal_loop_version(toy_root):
    data = load_tu("TOY", toy_root)
    a, b, c = data.batches(5, seed=1), data.batches(5, seed=1), data.batches(5, seed=2)
    assert [x.y.tolist() for x in a] == [x.y.tolist() for x in b]
    assert [x.num_nodes for x in a] != [x.num_nodes for x in c]
    batch = a[0]
    loop = torch.zeros(batch.num_nodes, batch.num_graphs, dtype=torch.bool)
    for node, graph in enumerate(batch.batch.tolist()):
        loop[node, graph] = True
    assert torch.equal(F.one_hot(batch.batch, batch.num_graphs).bool(), loop)


def test_model_shapes_and_loss_on_a_real_batch(toy_root):
    data = load_tu("TOY", toy_root)
    batch = data.batches(8, seed=0)[0]
    model = InfoGraph(data.num_features, hidden=16, layers=3)
    local, graph = model(batch.x, batch.neighbours, batch.batch, batch.num_graphs)
    assert local.shape == (batch.num_nodes, 48) and graph.shape == (batch.num_graphs, 48)
    embeddings, labels = model.embed(data.batches(8, seed=0))
    assert embeddings.shape == (24, 48) and labels.shape == (24,)
    loss = local_global_loss(local, graph, batch.batch, tau_plus=0.5, beta=1.0)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_evaluator_is_deterministic_and_separates_separable_data():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 30)
    separable = rng.normal(size=(60, 4)) + 6 * labels[:, None]
    assert svm_accuracy(separable, labels, seed=0, folds=5) == 1.0
    noise = rng.normal(size=(60, 4))
    first = svm_accuracy(noise, labels, seed=3, folds=5)
    assert first == svm_accuracy(noise, labels, seed=3, folds=5) and first < 0.8


@pytest.mark.skipif(not (STAGED / "tu" / "MUTAG" / "raw").is_dir(), reason="staged MUTAG not present")
def test_precomputed_kernel_evaluator_equals_sklearn_grid_search():
    """The fast evaluator is the released protocol: GridSearchCV(SVC(), C grid, cv=5) inside stratified 10-fold CV."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.svm import SVC

    from graph.evaluate import C_GRID

    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1, 2], 30)
    x = rng.normal(size=(90, 6)) * 40 + 25 * labels[:, None] * rng.normal(size=6)  # overlapping, unscaled classes
    for seed in (0, 1):
        expected = []
        for train, test in StratifiedKFold(10, shuffle=True, random_state=seed).split(x, labels):
            search = GridSearchCV(SVC(), {"C": list(C_GRID)}, cv=StratifiedKFold(5, shuffle=True, random_state=seed))
            expected.append((search.fit(x[train], labels[train]).predict(x[test]) == labels[test]).mean())
        assert svm_accuracy(x, labels, seed=seed) == pytest.approx(np.mean(expected), abs=1e-12)
        assert 0.4 < np.mean(expected) < 0.95  # neither trivial nor chance: the C choice matters


def test_staged_mutag_uses_node_labels(tmp_path, monkeypatch):
    monkeypatch.setenv("HARDNEG_CACHE", str(tmp_path))
    data = load_tu("MUTAG", STAGED)
    assert len(data.graphs) == 188 and data.num_features == 7
    assert sorted(torch.bincount(data.labels).tolist()) == [63, 125]


@pytest.mark.parametrize("with_labels", [False, True])
def test_node_attributes_are_used_when_a_set_has_no_node_labels(toy_root, with_labels):
    """Other TU sets: attributes alone become the features; with node labels, labels win (as released)."""
    raw = toy_root / "tu" / "TOY" / "raw"
    nodes = len((raw / "TOY_graph_indicator.txt").read_text().split())
    attributes = np.random.default_rng(1).normal(size=(nodes, 2)).round(4)
    (raw / "TOY_node_attributes.txt").write_text("".join(f"{a}, {b}\n" for a, b in attributes))
    if with_labels:
        (raw / "TOY_node_labels.txt").write_text("".join(f"{i % 3}\n" for i in range(nodes)))
    data = load_tu("TOY", toy_root)
    x = torch.cat([g.x for g in data.graphs])
    if with_labels:
        assert data.num_features == 3 and torch.equal(x, F.one_hot(torch.arange(nodes) % 3, 3).float())
    else:
        assert data.num_features == 2 and torch.allclose(x, torch.tensor(attributes, dtype=torch.float32))


def test_missing_data_set_is_a_clear_error(toy_root):
    with pytest.raises(UserError, match=r"NOPE not found.*found: TOY.*NOPE_A\.txt"):
        load_tu("NOPE", toy_root)


def run_cli(*args, root, monkeypatch, capsys):
    """The CLI in-process, exactly as ``python -m graph`` runs it; returns (exit code, stdout, stderr)."""
    from common.cli import run_main
    from graph.__main__ import main

    monkeypatch.setenv("HARDNEG_OFFLINE", "1")
    with pytest.raises(SystemExit) as exit_info:
        run_main(main, [*args, "--data-dir", str(root), "--threads", "1", "--no-progress"])
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


@pytest.mark.parametrize(
    "args,message",
    [(["--dataset", "NOPE"], "not found"), (["--objective", "jsd:tau_plus=1.5"], "tau_plus must be in [0, 1)"),
     (["--objective", "magic"], "unknown objective 'magic'"),
     (["--epochs", "5", "--eval-at", "2,6"], "--eval-at")],
)
def test_cli_bad_input_exits_2_with_one_line(toy_root, monkeypatch, capsys, args, message):
    code, _, err = run_cli("--dataset", "TOY", *args, root=toy_root, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_real_command_line_exits_2_on_missing_data(tmp_path):
    env = {**os.environ, "HARDNEG_CACHE": str(tmp_path / "cache"), "HARDNEG_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", "graph", "--dataset", "NOPE", "--data-dir", str(tmp_path)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and result.stderr.startswith("error: data set NOPE not found")


def test_cli_resumes_without_duplicating_records(toy_root, tmp_path, monkeypatch, capsys):
    out = tmp_path / "records.jsonl"
    args = ("--dataset", "TOY", "--objective", "infograph", "--objective", "jsd:tau_plus=0.5,beta=1", "--repeats", "2",
            "--epochs", "2", "--out", str(out))
    code, _, err = run_cli(*args, root=toy_root, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    lines = out.read_text().splitlines()
    assert len(lines) == 6  # (untrained, infograph, hard) x 2 repeats
    assert all(json.loads(line)["config"]["flush_denormal"] for line in lines)  # on by default, and recorded
    assert float(torch.tensor(1e-39) * 1.0) != 0.0  # and switched off again when the command returns
    # A run killed mid-write: two finished records survive and a partial line follows.
    out.write_text("\n".join(lines[:2]) + "\n" + lines[2][:30])
    code, stdout, err = run_cli(*args, root=toy_root, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert "2 already recorded" in stdout
    records = [json.loads(line) for line in out.read_text().splitlines()]
    keys = [(json.dumps(r["config"]["objective"]), r["seed"]) for r in records]
    assert len(keys) == 6 and len(set(keys)) == 6
    assert "| quick, 2 epochs | TOY | hard b=1 [paper] |" in stdout  # --epochs overrides the profile: its own rows
    _, stdout, _ = run_cli(*args, root=toy_root, monkeypatch=monkeypatch, capsys=capsys)
    assert "6 already recorded" in stdout and len(out.read_text().splitlines()) == 6


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


def test_epoch_selection_summary():
    from graph.summary import epoch_selection

    def record(seed, at):
        config = {"dataset": "TOY", "method": "infograph", "convention": "paper", "tau_plus": 0.0, "beta": 0.0,
                  "repeat": seed, "seed": seed, "profile": "paper", "epochs": 20, "batch_size": 128, "hidden": 32,
                  "layers": 3, "lr": 0.001}
        return {"pipeline": "graph", "config": config, "seed": seed, "metrics": {"accuracy": at["20"], "accuracy_at": at}}

    rows = epoch_selection([record(0, {"10": 60.0, "20": 50.0}), record(1, {"10": 40.0, "20": 70.0})])
    (row,) = rows
    assert row["profile"] == "paper, 20 epochs" and row["repeats"] == 2
    assert row["at"][10] == (50.0, pytest.approx(14.142, abs=1e-3)) and row["at"][20][0] == 60.0
    assert row["best_fixed"] == 60.0  # epoch 20 has the better mean
    assert row["best_per_run"][0] == 65.0  # 60 from run 0's epoch 10, 70 from run 1's epoch 20


def test_answers_correct_for_the_number_of_variants():
    """A lone p = 0.03 is starred in the main table but not significant among 4 variants; p ~ 0 is."""
    from common.stats import PairedDelta
    from graph.summary import answers

    def row(method, mean, se):
        return {"profile": "paper", "dataset": "TOY", "method": method, "delta_vs_infograph": mean, "delta_se": se,
                "delta_n": 10}

    se_marginal = 1.0 / 2.55  # t = 2.55 with 9 degrees of freedom: p ~ 0.031
    assert 0.02 < PairedDelta(1.0, se_marginal, 10).p_value < 0.04
    rows = [row("untrained", -5.0, 0.1), row("infograph", None, None) | {"delta_n": None},
            row("hard b=1 [paper]", 3.0, 0.2), row("hard b=2 [paper]", 1.0, se_marginal),
            row("debiased [paper]", -2.0, 0.2), row("hard b=10 [paper]", 0.1, 0.5)]
    (answer,) = answers(rows)
    assert answer["variants"] == 4 and answer["repeats"] == 10  # untrained and the baseline are not variants
    assert answer["better"] == ["hard b=1 [paper]"] and answer["worse"] == ["debiased [paper]"]
    assert answer["top"][0] == "hard b=1 [paper]"
    assert answer["largest_gain"] == pytest.approx(3.0 + t_threshold(10, 0.05 / 4) * 0.2)  # Bonferroni over 4 variants


def test_summary_keeps_settings_and_data_sets_together_when_records_interleave():
    """A later data set of one setting must not land after rows of another setting that ran in between."""
    from graph.summary import summarize

    def record(dataset, epochs, method="infograph"):
        config = {"dataset": dataset, "method": method, "convention": "paper", "tau_plus": 0.5 if method == "debiased" else 0.0, "beta": 0.0,
                  "repeat": 0, "seed": 0, "profile": "paper", "epochs": epochs, "batch_size": 128, "hidden": 32,
                  "layers": 3, "lr": 0.001}
        return {"pipeline": "graph", "config": config, "seed": 0, "wall_time_s": 1.0,
                "metrics": {"accuracy": 50.0, "seconds_per_epoch": 0.1}}

    records = [record("A", 200), record("A", 20), record("B", 200), record("A", 20, "debiased"), record("B", 20)]
    order = [(row["profile"], row["dataset"], row["method"]) for row in summarize(records)]
    assert order == [("paper", "A", "infograph"), ("paper", "B", "infograph"), ("paper, 20 epochs", "A", "infograph"),
                     ("paper, 20 epochs", "A", "debiased [paper]"), ("paper, 20 epochs", "B", "infograph")]


def test_confirmation_tests_only_the_fresh_seeds_and_leaves_them_out_of_the_grid():
    """The picked variant's Δ on the grid's seeds and on fresh seeds are separate; Holm runs over confirmations."""
    from graph.summary import Confirmation, confirmations, format_confirmations

    def record(method, beta, seed, accuracy):
        config = {"dataset": "TOY", "method": method, "convention": "paper", "tau_plus": 0.5 if beta else 0.0,
                  "beta": beta, "repeat": seed, "seed": seed, "profile": "paper", "epochs": 200, "batch_size": 128,
                  "hidden": 32, "layers": 3, "lr": 0.001}
        return {"pipeline": "graph", "config": config, "seed": seed, "metrics": {"accuracy": accuracy}}

    grid = [record("infograph", 0.0, s, 50.0) for s in range(3)] + [record("hard", 1.0, s, 53.0 + s) for s in range(3)]
    fresh = [record("infograph", 0.0, s, 50.0 + s % 2) for s in range(10, 13)]
    fresh += [record("hard", 1.0, s, 50.0 + s % 2 + 0.1 * (s - 10)) for s in range(10, 13)]  # Δ 0, 0.1, 0.2
    picked = Confirmation("paper", "TOY", "hard b=1 [paper]", range(10, 13))
    assert [picked.covers(r) for r in (grid[0], fresh[0])] == [False, True]
    other = Confirmation("paper", "TOY", "hard b=2 [paper]", range(10, 13))  # never run
    rows = confirmations(grid + fresh, (picked, other))
    assert rows[0]["picked"].mean == pytest.approx(4.0) and rows[0]["picked"].n == 3
    assert rows[0]["fresh"].mean == pytest.approx(0.1) and rows[0]["fresh"].n == 3
    assert rows[0]["fresh"].p_value == pytest.approx(1 - (3 / 5) ** 0.5)  # t = sqrt(3) on 2 df: p = 1 - t / sqrt(2 + t^2)
    assert rows[0]["confirmed"] is False and "confirmed" not in rows[1]
    text = format_confirmations(rows)
    assert "|  / 50.33 / 50.43 | +0.10 ± 0.06 | 0.225 | no |" in text  # no untrained runs here and "fewer than 2 fresh seeds so far" in text


def test_declared_confirmations_name_real_variants():
    from graph.config import PROFILES, STAGED
    from graph.summary import CONFIRMATIONS

    labels = {"infograph"} | {f"{m} [{c}]" for m in ("debiased",) for c in ("paper", "reference")}
    labels |= {f"hard b={b:g} [{c}]" for b in (1, 2, 10) for c in ("paper", "reference")}
    for c in CONFIRMATIONS:
        assert c.setting in PROFILES and c.dataset in STAGED and c.variant in labels
        assert min(c.seeds) >= PROFILES["paper"].repeats  # fresh: beyond the grid's seeds 0-9


def test_a_confirmed_gain_is_named_with_the_untrained_encoder_when_that_scores_higher():
    from graph.summary import Confirmation, confirmations, format_confirmations

    def record(method, seed, accuracy):
        config = {"dataset": "TOY", "method": method, "convention": "reference", "tau_plus": 0.5 if method == "debiased" else 0.0,
                  "beta": 0.0, "repeat": seed, "seed": seed, "profile": "quick", "epochs": 0 if method == "untrained" else 10,
                  "batch_size": 128, "hidden": 32, "layers": 3, "lr": 0.001}
        return {"pipeline": "graph", "config": config, "seed": seed, "metrics": {"accuracy": accuracy}}

    seeds = range(20, 26)
    records = [record("untrained", s, 80.0) for s in seeds] + [record("infograph", s, 70.0 + s % 3) for s in seeds]
    records += [record("debiased", s, 72.0 + s % 3 + 0.04 * (s - 20)) for s in seeds]  # +2.0 to +2.2
    text = format_confirmations(confirmations(records, (Confirmation("quick", "TOY", "debiased [reference]", seeds),)))
    assert "| 80.00 / 71.00 / 73.10 | +2.10 ± 0.03* | < 0.001 | yes |" in text
    assert text.endswith("Confirmed beyond noise: debiased [reference] on TOY (quick), +2.10 ± 0.03* over 6 fresh seeds, "
                         "though the untrained encoder scores higher still (80.00 against 73.10).")


def test_training_with_and_without_distinct_rows_takes_the_same_first_step(toy_root):
    """One batch, one epoch: the recorded loss is the first step's, the same whichever rows are scored."""
    from graph.config import expand_cells
    from graph.train import train_and_evaluate

    data = load_tu("TOY", toy_root)
    cell = expand_cells(["TOY"], [HARD_JSD], profile="quick", seed=0,
                        settings=replace(PROFILES["quick"], repeats=1, epochs=1))[-1]
    every, distinct = (train_and_evaluate(cell, data, progress=False, distinct_nodes=flag)["final_loss"] for flag in (False, True))
    assert distinct == pytest.approx(every, rel=1e-5)
