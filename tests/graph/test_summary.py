"""Summaries of graph records: paired deltas, Holm, confirmations, epoch selection."""

from __future__ import annotations

import pytest

from common.stats import t_threshold
from graph.config import PROFILES


def test_epoch_selection_summary():
    from graph.report import epoch_selection

    def record(seed, at):
        config = {"dataset": "TOY", "method": "infograph", "convention": "paper", "tau_plus": 0.0, "beta": 0.0,
                  "repeat": seed, "seed": seed, "profile": "paper", "epochs": 20, "batch_size": 128, "hidden": 32,
                  "layers": 3, "lr": 0.001}
        return {"pipeline": "graph", "protocol": 1, "config": config, "seed": seed, "metrics": {"accuracy": at["20"], "accuracy_at": at}}

    rows = epoch_selection([record(0, {"10": 60.0, "20": 50.0}), record(1, {"10": 40.0, "20": 70.0})])
    (row,) = rows
    assert row["profile"] == "paper, 20 epochs" and row["repeats"] == 2
    assert row["at"][10] == (50.0, pytest.approx(14.142, abs=1e-3)) and row["at"][20][0] == 60.0
    assert row["best_fixed"] == 60.0  # epoch 20 has the better mean
    assert row["best_per_run"][0] == 65.0  # 60 from run 0's epoch 10, 70 from run 1's epoch 20


def test_answers_correct_for_the_number_of_variants():
    """A lone p = 0.03 is starred in the main table but not significant among 4 variants; p ~ 0 is."""
    from common.stats import PairedDelta
    from graph.report import answers

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
    from graph.report import summarize

    def record(dataset, epochs, method="infograph"):
        config = {"dataset": dataset, "method": method, "convention": "paper", "tau_plus": 0.5 if method == "debiased" else 0.0, "beta": 0.0,
                  "repeat": 0, "seed": 0, "profile": "paper", "epochs": epochs, "batch_size": 128, "hidden": 32,
                  "layers": 3, "lr": 0.001}
        return {"pipeline": "graph", "protocol": 1, "config": config, "seed": 0, "wall_time_s": 1.0,
                "metrics": {"accuracy": 50.0, "seconds_per_epoch": 0.1}}

    records = [record("A", 200), record("A", 20), record("B", 200), record("A", 20, "debiased"), record("B", 20)]
    order = [(row["profile"], row["dataset"], row["method"]) for row in summarize(records)]
    assert order == [("paper", "A", "infograph"), ("paper", "B", "infograph"), ("paper, 20 epochs", "A", "infograph"),
                     ("paper, 20 epochs", "A", "debiased [paper]"), ("paper, 20 epochs", "B", "infograph")]


def test_confirmation_tests_only_the_fresh_seeds_and_leaves_them_out_of_the_grid():
    """The picked variant's Δ on the grid's seeds and on fresh seeds are separate; Holm runs over confirmations."""
    from graph.report import Confirmation, confirmations, format_confirmations

    def record(method, beta, seed, accuracy):
        config = {"dataset": "TOY", "method": method, "convention": "paper", "tau_plus": 0.5 if beta else 0.0,
                  "beta": beta, "repeat": seed, "seed": seed, "profile": "paper", "epochs": 200, "batch_size": 128,
                  "hidden": 32, "layers": 3, "lr": 0.001}
        return {"pipeline": "graph", "protocol": 1, "config": config, "seed": seed, "metrics": {"accuracy": accuracy}}

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
    from graph.config import STAGED
    from graph.report import CONFIRMATIONS

    labels = {"infograph"} | {f"{m} [{c}]" for m in ("debiased",) for c in ("paper", "reference")}
    labels |= {f"hard b={b:g} [{c}]" for b in (1, 2, 10) for c in ("paper", "reference")}
    for c in CONFIRMATIONS:
        assert c.setting.split(",")[0] in PROFILES and c.setting.endswith("protocol v0 (history)") and c.dataset in STAGED and c.variant in labels
        assert min(c.seeds) >= PROFILES["paper"].repeats  # fresh: beyond the grid's seeds 0-9


def test_a_confirmed_gain_is_named_with_the_untrained_encoder_when_that_scores_higher():
    from graph.report import Confirmation, confirmations, format_confirmations

    def record(method, seed, accuracy):
        config = {"dataset": "TOY", "method": method, "convention": "reference", "tau_plus": 0.5 if method == "debiased" else 0.0,
                  "beta": 0.0, "repeat": seed, "seed": seed, "profile": "quick", "epochs": 0 if method == "untrained" else 10,
                  "batch_size": 128, "hidden": 32, "layers": 3, "lr": 0.001}
        return {"pipeline": "graph", "protocol": 1, "config": config, "seed": seed, "metrics": {"accuracy": accuracy}}

    seeds = range(20, 26)
    records = [record("untrained", s, 80.0) for s in seeds] + [record("infograph", s, 70.0 + s % 3) for s in seeds]
    records += [record("debiased", s, 72.0 + s % 3 + 0.04 * (s - 20)) for s in seeds]  # +2.0 to +2.2
    text = format_confirmations(confirmations(records, (Confirmation("quick", "TOY", "debiased [reference]", seeds),)))
    assert "| 80.00 / 71.00 / 73.10 | +2.10 ± 0.03* | < 0.001 | yes |" in text
    assert text.endswith("Confirmed beyond noise: debiased [reference] on TOY (quick), +2.10 ± 0.03* over 6 fresh seeds, "
                         "though the untrained encoder scores higher still (80.00 against 73.10).")
