"""Summaries of graph records: paired deltas, Holm, confirmations, epoch selection."""

from __future__ import annotations

import pytest

from common.objectives import parse_objective
from common.stats import t_threshold
from graph.config import PROFILES
from tests.graph.conftest import REPO


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

    def records(spec, deltas):
        """Runs of ``spec`` (None: untrained) on seeds 0-9, scoring ``deltas`` above the baseline's 50 + seed % 3."""
        objective = None if spec is None else parse_objective(spec).to_dict()
        return [{"pipeline": "graph", "protocol": 1, "seed": seed, "metrics": {"accuracy": 50.0 + seed % 3 + delta},
                 "config": {"dataset": "TOY", "objective": objective, "repeat": seed, "seed": seed, "profile": "paper",
                            "epochs": 0 if spec is None else 200, "batch_size": 128, "hidden": 32, "layers": 3, "lr": 0.001}}
                for seed, delta in enumerate(deltas)]

    def spread(mean, se):  # ten differences with this mean and standard error
        return [mean + se * 10 ** 0.5 * 0.9 ** 0.5 * (-1) ** i for i in range(10)]

    se_marginal = 1.0 / 2.55  # t = 2.55 with 9 degrees of freedom: p ~ 0.031
    assert 0.02 < PairedDelta(1.0, se_marginal, 10).p_value < 0.04
    runs = [*records(None, spread(-5.0, 0.1)), *records("infograph", [0.0] * 10),
            *records("jsd:tau_plus=0.5,beta=1", spread(3.0, 0.2)), *records("jsd:tau_plus=0.5,beta=2", spread(1.0, se_marginal)),
            *records("jsd:tau_plus=0.5", spread(-2.0, 0.2)), *records("jsd:tau_plus=0.5,beta=10", spread(0.1, 0.5))]
    (answer,) = answers(runs)
    assert answer["variants"] == 4 and answer["repeats"] == 10  # untrained and the baseline are not variants
    assert answer["better"] == ["jsd beta=1,tau_plus=0.5"] and answer["worse"] == ["jsd tau_plus=0.5"]
    assert answer["top"][0] == "jsd beta=1,tau_plus=0.5"
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
    assert order == [("paper", "A", "jsd"), ("paper", "B", "jsd"), ("paper, 20 epochs", "A", "jsd"),
                     ("paper, 20 epochs", "A", "jsd tau_plus=0.5"), ("paper, 20 epochs", "B", "jsd")]


def test_confirmation_tests_only_the_fresh_seeds_and_leaves_them_out_of_the_grid():
    """The picked variant's Δ on the grid's seeds and on fresh seeds are separate; a stage is judged as one family,
    once all of it has run."""
    from graph.report import Confirmation, confirmations, format_confirmations

    def record(method, beta, seed, accuracy):
        config = {"dataset": "TOY", "method": method, "convention": "paper", "tau_plus": 0.5 if beta else 0.0,
                  "beta": beta, "repeat": seed, "seed": seed, "profile": "paper", "epochs": 200, "batch_size": 128,
                  "hidden": 32, "layers": 3, "lr": 0.001}
        return {"pipeline": "graph", "protocol": 1, "config": config, "seed": seed, "metrics": {"accuracy": accuracy}}

    grid = [record("infograph", 0.0, s, 50.0) for s in range(3)] + [record("hard", 1.0, s, 53.0 + s) for s in range(3)]
    fresh = [record("infograph", 0.0, s, 50.0 + s % 2) for s in range(10, 13)]
    fresh += [record("hard", 1.0, s, 50.0 + s % 2 + 0.1 * (s - 10)) for s in range(10, 13)]  # Δ 0, 0.1, 0.2
    picked = Confirmation("paper", "TOY", "jsd:tau_plus=0.5,beta=1", range(10, 13))
    assert [picked.covers(r) for r in (grid[0], fresh[0])] == [False, True]
    other = Confirmation("paper", "TOY", "jsd:tau_plus=0.5,beta=2", range(10, 13))  # never run
    rows = confirmations(grid + fresh, (picked, other))
    assert rows[0]["picked"].mean == pytest.approx(4.0) and rows[0]["picked"].n == 3
    assert rows[0]["fresh"].mean == pytest.approx(0.1) and rows[0]["fresh"].n == 3
    assert rows[0]["fresh"].p_value == pytest.approx(1 - (3 / 5) ** 0.5)  # t = sqrt(3) on 2 df: p = 1 - t / sqrt(2 + t^2)
    assert [r["verdict"] for r in rows] == ["pending", "pending"]  # its stage is not all in: no verdict yet
    assert "| jsd beta=1,tau_plus=0.5 | +4.00 ± 0.58* | 10-12 |  / 50.33 / 50.43 | +0.10 ± 0.06 |  | pending" in format_confirmations(rows)
    (row,) = confirmations(grid + fresh, (picked,))
    assert row["verdict"] == "no effect"
    assert "|  / 50.33 / 50.43 | +0.10 ± 0.06 | 0.225 | no |" in format_confirmations([row])  # no untrained runs here


def test_declared_confirmations_name_real_variants():
    from common.objectives import parse_objective
    from graph.config import STAGED, reproduction_objectives
    from graph.report import CONFIRMATIONS

    for c in CONFIRMATIONS:
        assert c.setting.split(",")[0] in PROFILES and c.setting.endswith("protocol v0 (history)") and c.dataset in STAGED
        assert parse_objective(c.variant) in reproduction_objectives(PROFILES["paper"])
        assert min(c.seeds) >= PROFILES["paper"].repeats  # fresh: beyond the grid's seeds 0-9


#: Each declared confirmation as it was declared before the registry's labels (the reproduction's own, from the
#: fields the records of that time hold), and how many committed runs it covered (any method) and how many of its
#: variant (any seed) it compared: counted from tables/records before the declarations moved to specs.
_DECLARED_BEFORE = [(("hard", 10.0, "paper"), 30, 40), (("hard", 1.0, "paper"), 50, 20), (("debiased", 0.0, "paper"), 50, 20),
                    (("debiased", 0.0, "reference"), 50, 40), (("hard", 10.0, "paper"), 60, 40),
                    (("debiased", 0.0, "reference"), 60, 40)]


def test_confirmations_select_the_runs_they_were_declared_for():
    """Declared by spec now, each confirmation compares exactly the committed runs it did under its old label."""
    from common.protocols import protocol_of
    from common.records import read_records
    from graph.report import CONFIRMATIONS, RECORD_NEEDS, confirmations, label_of, setting_of

    records = [r for r in read_records(REPO / "tables" / "records", RECORD_NEEDS) if r["pipeline"] == "graph"]
    assert len(CONFIRMATIONS) == len(_DECLARED_BEFORE)
    for c, ((method, beta, convention), covered, compared) in zip(CONFIRMATIONS, _DECLARED_BEFORE, strict=True):
        mine = [r for r in records if setting_of(r["config"], protocol_of(r)) == c.setting and r["config"]["dataset"] == c.dataset]
        by_label = [r for r in mine if label_of(r["config"]) == c.label]
        by_old_fields = [r for r in mine if (r["config"]["method"], r["config"]["beta"], r["config"]["convention"],
                                             r["config"]["tau_plus"]) == (method, beta, convention, 0.5)]
        assert by_label == by_old_fields and len(by_label) == compared
        assert sum(c.covers(r) for r in records) == covered
    # Every stage complete in the records: judged, and as committed (the two stage-2 variants confirmed).
    assert [r["verdict"] for r in confirmations(records)] == ["no effect"] * 4 + ["gain"] * 2


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
    declared = (Confirmation("quick", "TOY", "jsd:tau_plus=0.5,convention=reference", seeds),)
    text = format_confirmations(confirmations(records, declared))
    assert "| 80.00 / 71.00 / 73.10 | +2.10 ± 0.03* | < 0.001 | yes |" in text
    assert text.endswith("Confirmed beyond noise: jsd convention=reference,tau_plus=0.5 on TOY (quick), +2.10 ± 0.03* over 6 fresh seeds, "
                         "though the untrained encoder scores higher still (80.00 against 73.10).")


def test_rows_are_labelled_by_the_registry_for_old_and_new_records():
    """One label per objective: the registry's (with t=... off the profile's temperature), whichever format stored it."""
    from common.stats import config_label
    from graph.config import INFOGRAPH, expand_cells
    from graph.report import label_of, summarize

    hard_jsd, hard = parse_objective("jsd:tau_plus=0.5,beta=2,convention=reference"), parse_objective("hard:beta=2")
    settings = PROFILES["paper"]
    cells = expand_cells(["TOY"], [hard_jsd, hard], profile="paper", seed=0, settings=settings)
    off = expand_cells(["TOY"], [hard], profile="paper", seed=0, settings=type(settings)(repeats=1, temperature=0.5))
    assert [c.label for c in cells[:3]] == ["untrained", "jsd beta=2,convention=reference,tau_plus=0.5", "hard beta=2"]
    assert off[1].label == "hard beta=2 t=0.5" == config_label(hard.label(), 0.5, settings.temperature)
    legacy = {"method": "hard", "tau_plus": 0.5, "beta": 2.0, "convention": "reference", **{
        k: v for k, v in cells[1].to_config().items() if k not in ("objective", "temperature")}}
    assert label_of(legacy) == cells[1].label  # a record from before the registry reads as today's

    def record(cell):
        return {"pipeline": "graph", "protocol": 1, "config": cell.to_config(), "seed": cell.seed, "wall_time_s": 1.0,
                "metrics": {"accuracy": 50.0 + len(cell.label), "seconds_per_epoch": 0.1}}

    baseline = expand_cells(["TOY"], [INFOGRAPH], profile="paper", seed=0, settings=settings)[1]
    rows = summarize([record(c) for c in (*cells[:3], off[1], baseline)])
    # The temperature is the row's, not the setting's: the off-temperature run pairs with the same jsd baseline.
    assert [(r["profile"], r["method"], r["delta_n"]) for r in rows] == [
        ("paper", "untrained", 1), ("paper", "jsd beta=2,convention=reference,tau_plus=0.5", 1),
        ("paper", "hard beta=2", 1), ("paper", "hard beta=2 t=0.5", 1), ("paper", "jsd", None)]
