"""The tuned leaderboard: equal budgets, selection by a rule, edge steps, temperature controls, declared rounds judged
by one Holm family, protocol versions that never pair, and a JSON the pages are rendered from."""

from __future__ import annotations

import json
import statistics

import pytest

from benchmarks import leaderboard, stage1, suites
from benchmarks.leaderboard_md import controls_lines
from benchmarks.suites import Claim, Config, Round, configuration, expand, sweeps
from common.errors import UserError
from common.objectives import REGISTRY
from common.stats import Score, holm_adjusted, judge

COLUMN = "CIFAR-10 (JPEG q75)"


def _image(spec: dict | None, seed: int, accuracy: float, temperature: float = 0.5, protocol: int = 1) -> dict:
    config = {"profile": "quick", "dataset_label": COLUMN, "method": "x", "anneal_beta": False, "epochs": 8,
              "temperature": temperature, **({"method": "random-init"} if spec is None else {"objective": spec})}
    return {"pipeline": "image", "config": config, "seed": seed, "metrics": {"linear_top1": accuracy},
            "protocol": protocol, "git_commit": "x"}


def _scores(config: Config, values: list[float]) -> list[Score]:
    label = stage1.label_of("image", config)
    return [Score("image", COLUMN, label, seed, v, 1, config.spec, config.temperature) for seed, v in enumerate(values)]


def test_every_family_gets_the_same_budget_in_every_modality():
    families = {name for name, f in REGISTRY.items() if not f.local_global}
    for modality in suites.MODALITIES:
        found = sweeps(modality)
        assert {s.family for s in found} == families
        assert {len(s.values) for s in found} == {4}
        configs = suites.stage1_configs(modality)
        assert len(configs) == len(set(configs)) == 4 * len(families)  # four distinct configurations each


def test_hardness_is_declared_as_equal_effective_multipliers():
    for modality in suites.MODALITIES:
        t = suites.profile_temperature(modality)
        sweep = next(s for s in sweeps(modality) if s.family == "hardness")
        assert [round(1 + a * t, 6) for a in sweep.values] == list(suites.HARDNESS_MULTIPLIERS.values)


def test_selection_takes_the_best_mean_and_steps_beyond_an_edge_first():
    sweep = next(s for s in sweeps("image") if s.family == "hard")
    grid = [configuration("image", sweep, v) for v in sweep.values]
    means = {0.5: 40.0, 1.0: 42.0, 2.0: 41.0, 6.0: 39.0}
    scores = [s for v, c in zip(sweep.values, grid, strict=True) for s in _scores(c, [means[v] + e for e in range(4)])]
    by = stage1.table(scores, "image", None)
    chosen = stage1.select(by, "image", sweep)
    assert chosen.config == grid[1] and chosen.step is None
    # best at the highest value: the declared step beyond it runs before anything is selected
    scores = [s for s in scores if s.spec != grid[3].spec] + _scores(grid[3], [50.0, 51.0, 52.0, 53.0])
    chosen = stage1.select(stage1.table(scores, "image", None), "image", sweep)
    step = configuration("image", sweep, sweep.above)
    assert chosen.config is None and chosen.step == step
    assert step in stage1.follow_ups("image", None, scores)
    scores += _scores(step, [49.0, 50.0, 51.0, 52.0])  # the step is worse: the edge value is selected
    assert stage1.select(stage1.table(scores, "image", None), "image", sweep).config == grid[3]
    scores = [s for s in scores if s.spec != step.spec] + _scores(step, [60.0, 61.0, 62.0, 63.0])
    assert stage1.select(stage1.table(scores, "image", None), "image", sweep).config == step


def test_nothing_is_selected_before_every_configuration_has_all_its_seeds():
    sweep = next(s for s in sweeps("image") if s.family == "hard")
    grid = [configuration("image", sweep, v) for v in sweep.values]
    scores = [s for c in grid for s in _scores(c, [40.0, 41.0, 42.0, 43.0])]
    scores = [s for s in scores if not (s.spec == grid[0].spec and s.seed == 3)]
    chosen = stage1.select(stage1.table(scores, "image", None), "image", sweep)
    assert chosen.config is None and "3 of 4" in chosen.why


def _board(levels: dict[tuple[str, float], float]) -> list[Score]:
    """Stage-1 scores of every image configuration: ``levels`` where given, else about 40, best at the second
    value of each grid (inside it, so nothing waits for an edge step)."""
    scores: list[Score] = []
    for sweep in sweeps("image"):
        for i, value in enumerate(sweep.values):
            level = levels.get((sweep.family, value), 40.0 - abs(i - 1) * 0.1)
            scores += _scores(configuration("image", sweep, value), [level + e for e in (0, 0.5, 1, 1.5)])
    return scores


def test_every_selection_is_run_again_at_tuned_ntxents_temperature_whether_it_wins_or_loses():
    # NT-Xent best at 0.2 (an inner value); hard best at beta=2 and above NT-Xent; every other family below it
    scores = _board({("ntxent", 0.2): 45.0, ("hard", 2.0): 47.0})
    ups = stage1.follow_ups("image", None, scores)
    controls = [c for c in ups if c.temperature == 0.2]
    hard = configuration("image", next(s for s in sweeps("image") if s.family == "hard"), 2.0)
    assert Config("hard", hard.spec, 0.2) in controls
    sweep = next(s for s in sweeps("image") if s.family == "debiased")
    debiased = configuration("image", sweep, sweep.values[1])
    assert Config("debiased", debiased.spec, 0.2) in controls  # a loss is checked like a gain
    assert {c.family for c in controls} == {s.family for s in sweeps("image")} - set(suites.TEMPERATURE_FAMILIES)
    # a family that sweeps the temperature needs no control; one selected at NT-Xent's temperature neither
    assert not stage1.controls([stage1.Selection("hard", Config("hard", hard.spec, 0.2), ""),
                                stage1.Selection("ntxent", Config("ntxent", "ntxent", 0.2), "")])


def test_the_page_says_what_the_temperature_alone_changed():
    scores = _board({("ntxent", 0.2): 45.0, ("hard", 2.0): 47.0})
    hard = configuration("image", next(s for s in sweeps("image") if s.family == "hard"), 2.0)
    control = Config("hard", hard.spec, 0.2)
    header, _, _ = leaderboard.column_data(scores, "image", None)
    row = next(c for c in header["controls"] if c["family"] == "hard")
    assert not row["complete"] and "runs again at t=0.2 (paired seeds in: 0 of 4)" in "\n".join(controls_lines(header))
    scores += _scores(control, [44.0, 44.0, 45.0, 46.0])  # at NT-Xent's temperature it loses its gain
    header, _, _ = leaderboard.column_data(scores, "image", None)
    row = next(c for c in header["controls"] if c["family"] == "hard")
    assert row["complete"]
    assert row["selected_vs_baseline"]["delta"] == pytest.approx(2.0)
    assert row["control_vs_baseline"]["delta"] == pytest.approx(-1.0)  # 44.75 - 45.75
    assert row["control_vs_selected"]["delta"] == pytest.approx(-3.0)
    text = "\n".join(controls_lines(header))
    assert "hard beta=2: +2.00" in text and "-1.00" in text and "changed it by -3.00" in text


def test_holm_adjusted_p_values_equal_a_hand_computation_and_holms_decisions():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> monotone 0.06
    assert holm_adjusted(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    from tests.common.test_stats import holm_decisions

    for alpha in (0.02, 0.03, 0.05, 0.06):
        assert [a <= alpha for a in holm_adjusted(p)] == holm_decisions(p, alpha)


def test_a_declared_round_is_one_holm_family_two_sided_and_judged_only_when_complete():
    from common.stats import Claim as Compared

    fresh = tuple(range(8, 12))
    base = {s: 40.0 + s for s in fresh}
    gain = Compared("gain", {s: 42.0 + s + 0.1 * (s % 2) for s in fresh}, base, fresh)
    loss = Compared("loss", {s: 37.0 + s - 0.1 * (s % 2) for s in fresh}, base, fresh)
    noise = Compared("noise", {s: 40.0 + s + (0.5 if s % 2 else -0.5) for s in fresh}, base, fresh)
    judged = judge([gain, loss, noise])
    assert [j.verdict for j in judged] == ["gain", "loss", "no effect"]
    p = [j.delta.p_value for j in judged]
    assert [j.p_adjusted for j in judged] == pytest.approx(holm_adjusted(p))
    partial = Compared("gain", {s: v for s, v in gain.values.items() if s != 11}, base, fresh)
    assert {j.verdict for j in judge([partial, loss, noise])} == {"pending"}  # no verdict on part of a round


def test_a_round_cannot_change_after_a_fresh_seed_of_it_has_run():
    claim = Claim(COLUMN, "hard", ((COLUMN, "hard:beta=2,tau_plus=0.1", 0.5),), ((COLUMN, "ntxent", 0.2),))
    declared = Round("image", (claim,), suites.FRESH_SEEDS["image"])
    ran = {"pipeline": "harness", "config": {"cell": "leaderboard/fresh/image/x/seed=8", "round": declared.digest}}
    leaderboard.check_rounds([ran], (declared,))
    changed = Round("image", (claim,), suites.FRESH_SEEDS["image"][:-1])
    with pytest.raises(UserError, match="changed after its fresh seeds ran"):
        leaderboard.check_rounds([ran], (changed,))


def test_fresh_seeds_were_never_used_in_their_column_before():
    earlier = {m: set(seeds) for m, seeds in suites.STAGE1_SEEDS.items()}
    for modality, _, _, seeds in suites.LEADERBOARD_CONFIRMATIONS:
        earlier[modality] |= set(seeds)
    assert all(not earlier[m] & set(suites.FRESH_SEEDS[m]) for m in suites.MODALITIES)
    assert {m: len(s) for m, s in suites.FRESH_SEEDS.items()} == {"image": 8, "sentence": 6, "graph": 10}


def test_records_of_different_protocol_versions_never_pair():
    old = [_image({"name": "ntxent", "params": {}}, s, 40.0 + s, protocol=0) for s in range(4)]
    new = [_image({"name": "ntxent", "params": {}}, s, 41.0 + s) for s in range(4)]
    scores = stage1.collect(old + new)
    assert {s.protocol for s in scores} == {0, 1}
    assert stage1.table(scores, "image", None)[("ntxent", 0.5)] == {s: 41.0 + s for s in range(4)}
    assert stage1.table(stage1.collect(old), "image", None) == {}


def test_temperature_is_part_of_a_rows_label_and_image_runs_off_protocol_stay_out():
    records = [_image({"name": "ntxent", "params": {}}, 0, 40.0, temperature=0.2),
               _image({"name": "ntxent", "params": {}}, 0, 41.0)]
    smoke = _image({"name": "ntxent", "params": {}}, 0, 99.0)
    smoke["config"]["epochs"] = 4  # `--profile quick --epochs 4` records profile quick too
    assert sorted((s.label, s.value) for s in stage1.collect([*records, smoke])) == [
        ("ntxent", 41.0), ("ntxent t=0.2", 40.0)]


def test_a_cell_is_done_when_all_its_scores_are_recorded_however_it_ran():
    cells = [c for c in expand("leaderboard", "quick") if c.key.startswith("leaderboard/image/ntxent@t=0.2/")]
    assert [(c.yields.spec, c.yields.temperature, c.yields.seeds) for c in cells] == [("ntxent", 0.2, (s,)) for s in range(4)]
    assert all("--temperature" in c.argv for c in cells)
    records = [_image({"name": "ntxent", "params": {}}, s, 40.0, temperature=0.2) for s in (0, 2)]
    assert [c.key for c in stage1.done(cells, records)] == ["leaderboard/image/ntxent@t=0.2/seed=0",
                                                                  "leaderboard/image/ntxent@t=0.2/seed=2"]
    graph = next(c for c in expand("leaderboard", "quick") if c.key == "leaderboard/graph/MUTAG/ntxent")
    assert graph.yields.seeds == tuple(range(10)) and "--temperature" not in graph.argv  # the profile's 0.2


def test_time_left_prices_unrun_cells_by_the_median_recorded_run_and_says_when_none_is_left():
    todo = [c for c in expand("leaderboard", "quick") if c.key == "leaderboard/image/ntxent@t=0.2/seed=1"]
    records = [{**_image({"name": "ntxent", "params": {}}, 0, 40.0), "wall_time_s": 7200.0},
               {**_image({"name": "ntxent", "params": {}}, 1, 41.0), "wall_time_s": 3600.0}]
    two_threads = {"cpu": "x", "cpu_count": 2, "gpu": None, "torch_threads": 2}  # oversubscribed: not a core's time
    records += [{**_image({"name": "ntxent", "params": {}}, s, 41.0), "wall_time_s": 36000.0, "hardware": two_threads}
                for s in (2, 3)]
    assert stage1.time_left(todo, records).startswith("The cells still to run would take about image 2 h")
    assert stage1.time_left([], records) == "Every declared cell has run."


def test_the_json_round_trips_to_the_same_pages():
    from benchmarks.leaderboard_md import markdown, readme_section
    from benchmarks.leaderboard_page import html

    records = [_image({"name": "ntxent", "params": {}}, s, 40.0 + s + (t == 0.2), temperature=t) for s in range(4)
               for t in (0.1, 0.2, 0.3, 0.5)]
    records += [_image(None, s, 25.0) for s in range(4)]
    board = leaderboard.data(records)
    again = json.loads(json.dumps(board))
    assert markdown(again, "c") == markdown(json.loads(json.dumps(again)), "c")
    assert html(again) == html(json.loads(json.dumps(again)))
    column = next(c for c in again["columns"] if c["modality"] == "image")
    assert column["baseline"] == "ntxent t=0.2" and column["baseline_selected"]
    assert column["untrained_delta"] == pytest.approx(25.0 - statistics.fmean(41.0 + s for s in range(4)))
    assert "No verdict yet" in again["verdicts"]["image"] and readme_section(again)


def test_the_untuned_rounds_are_rejudged_as_one_family():
    verdict = leaderboard.history([])
    assert len(verdict["claims"]) == len(suites.LEADERBOARD_CONFIRMATIONS) and verdict["survivors"] == []


def test_unknown_and_retired_objectives_are_history_shown_by_what_they_stored(capsys):
    records = [_image({"name": "scaled", "params": {"scale": 2.0}}, 0, 40.0),
               _image({"name": "fnc", "params": {"k": 1.0, "mode": "attraction"}}, 0, 41.0),
               _image({"name": "fnc", "params": {}}, 0, 42.0)]
    scores = {(s.label, s.spec): s.value for s in stage1.collect(records)}
    assert scores == {("scaled:scale=2", "scaled:scale=2"): 40.0, ("fnc k=1", "fnc:k=1,mode=attraction"): 41.0,
                      ("fnc", "fnc:mode=attraction,threshold=0.7,topk=10"): 42.0}
    assert "'scaled', which no registered family has here" in capsys.readouterr().err


@pytest.mark.parametrize("modality", ["image", "graph"])
def test_the_proposed_round_is_code_that_declares_each_selection_against_the_baseline_and_runs_fresh_seeds(
        modality, monkeypatch):
    from benchmarks import leaderboard_cells
    from benchmarks.stage1 import ONE_COLUMN, Selection

    # a different selected value per column, so a claim that mixed up its columns would show
    chosen = {d: [Selection(s.family, configuration(modality, s, s.values[i % 4]), "best")
                  for s in sweeps(modality)] for i, d in enumerate(suites.columns(modality))}
    code = leaderboard.proposal(modality, chosen)
    declared = eval(code, vars(suites))  # what a session pastes into TUNED_ROUNDS
    assert declared.modality == modality and declared.seeds == suites.FRESH_SEEDS[modality]
    families = [s.family for s in sweeps(modality) if s.family != suites.BASELINE]
    per_family = len(chosen) + (modality == "graph")  # graph: each data set and their mean
    assert [c.family for c in declared.claims] == [f for f in families for _ in range(per_family)]
    planned = leaderboard.planned_power(modality, [{"modality": modality, "paired_sd": 1.0}])
    assert (planned["claims"], planned["seeds"]) == (len(declared.claims), len(declared.seeds))  # power as declared
    for claim in declared.claims:
        for (column, spec, t), (base_column, base_spec, base_t) in zip(claim.configs, claim.baselines, strict=True):
            sel = chosen[None] if None in chosen else chosen[column]
            assert column == base_column and column in {ONE_COLUMN.get(modality), *suites.columns(modality)}
            assert (spec, t) == next((s.config.spec, s.config.temperature) for s in sel if s.family == claim.family)
            assert (base_spec, base_t) == next((s.config.spec, s.config.temperature) for s in sel
                                               if s.family == suites.BASELINE)
        assert (claim.column == suites.MEAN) == (len(claim.configs) == 6)
    # once declared, every arm of every claim (the baseline once per column) runs on exactly the fresh seeds
    monkeypatch.setattr(leaderboard_cells, "TUNED_ROUNDS", (declared,))
    fresh = [c for c in leaderboard_cells.leaderboard_suite("quick") if c.key.startswith("leaderboard/fresh/")]
    arms = {(c.yields.dataset, c.yields.spec, c.yields.temperature) for c in fresh}
    assert len(arms) == len(chosen) * (len(families) + 1)
    seeds = {arm: sorted(s for c in fresh if (c.yields.dataset, c.yields.spec, c.yields.temperature) == arm
                         for s in c.yields.seeds) for arm in arms}
    assert all(v == list(suites.FRESH_SEEDS[modality]) for v in seeds.values())
    assert {c.round for c in fresh} == {declared.digest}


def test_each_round_states_its_planned_power_before_its_fresh_seeds_run():
    from common.stats import min_detectable_effect

    wobble = {0.1: [0.0, 1.0, 0.0, 1.0], 0.3: [0.0, 2.0, 0.0, 2.0], 0.5: [0.0, 3.0, 0.0, 3.0], 0.2: [0.0] * 4}
    records = [_image({"name": "ntxent", "params": {}}, s, 40.0 + s + (t == 0.2) * 5 + wobble[t][s], temperature=t)
               for s in range(4) for t in wobble]
    board = json.loads(json.dumps(leaderboard.data(records)))
    sds = sorted(statistics.stdev(w) for t, w in wobble.items() if t != 0.2)  # the paired s.d. of each comparison
    column = next(c for c in board["columns"] if c["modality"] == "image")
    assert column["paired_sd"] == pytest.approx(sds[1])  # the median
    families = len(sweeps("image")) - 1
    plan = board["planned"]["image"]
    assert (plan["claims"], plan["seeds"]) == (families, len(suites.FRESH_SEEDS["image"]))
    assert plan["mde"] == pytest.approx(min_detectable_effect(sds[1], 8, families))
    assert plan["mde"] < column["mde"]  # more seeds and fewer tests than stage 1's
    assert f"detect a true |Δ| of {plan['mde']:.1f} points or more" in board["verdicts"]["image"]
    assert board["planned"]["graph"] is None and "Planned power" not in board["verdicts"]["graph"]  # no spread yet


def test_a_declared_round_counts_and_shows_only_its_fresh_seeds(monkeypatch):
    hard = ((COLUMN, "hard:beta=2,tau_plus=0.1", 0.5),)
    declared = Round("image", (Claim(COLUMN, "hard", hard, ((COLUMN, "ntxent", 0.05),)),), suites.FRESH_SEEDS["image"])
    monkeypatch.setattr(leaderboard, "TUNED_ROUNDS", (declared,))
    arms = [({"name": "hard", "params": {"beta": 2.0, "tau_plus": 0.1}}, 0.5, 1.0), ({"name": "ntxent", "params": {}}, 0.05, 0.0)]
    stage1_only = [_image(spec, s, 40.0 + s + gain, temperature=t) for spec, t, gain in arms for s in range(4)]
    board = leaderboard.data(stage1_only)
    (claim,) = board["claims"]
    assert claim["scores"] == claim["baseline_scores"] == {} and claim["verdict"] == "pending"
    assert "has 0 of 8 paired fresh runs in" in board["verdicts"]["image"]
    fresh = [_image(spec, s, 40.0 + s + gain, temperature=t) for spec, t, gain in arms for s in declared.seeds[:3]]
    board = leaderboard.data(stage1_only + fresh)
    assert sorted(map(int, board["claims"][0]["scores"])) == list(declared.seeds[:3])
    assert "has 3 of 8 paired fresh runs in" in board["verdicts"]["image"]


def test_a_judged_round_reaches_every_page_with_its_configurations(monkeypatch):
    from benchmarks.leaderboard_md import markdown, readme_section
    from benchmarks.leaderboard_page import html

    hard, dcl = ((COLUMN, "hard:beta=2,tau_plus=0.1", 0.5),), ((COLUMN, "decoupled", 0.1),)
    base = ((COLUMN, "ntxent", 0.05),)
    declared = Round("image", (Claim(COLUMN, "hard", hard, base), Claim(COLUMN, "decoupled", dcl, base)),
                     suites.FRESH_SEEDS["image"])
    monkeypatch.setattr(leaderboard, "TUNED_ROUNDS", (declared,))
    arms = [({"name": "hard", "params": {"beta": 2.0, "tau_plus": 0.1}}, 0.5, [2.0, 2.2]),
            ({"name": "decoupled", "params": {}}, 0.1, [0.3, -0.3]), ({"name": "ntxent", "params": {}}, 0.05, [0.0, 0.0])]
    records = [_image(spec, s, 40.0 + s + wobble[s % 2], temperature=t) for spec, t, wobble in arms
               for s in declared.seeds]
    board = json.loads(json.dumps(leaderboard.data(records)))
    claims = {c["family"]: c for c in board["claims"]}
    assert claims["hard"]["verdict"] == "gain" and claims["decoupled"]["verdict"] == "no effect"
    assert (claims["hard"]["label"], claims["hard"]["baseline"]) == ("hard beta=2", "ntxent t=0.05")
    assert claims["hard"]["column"] == f"image:{COLUMN}"
    said = board["verdicts"]["image"]
    assert said.startswith("better than the temperature-tuned NT-Xent: hard beta=2 +2.10")
    assert f"no effect larger than {claims['decoupled']['mde']:.1f} points: decoupled t=0.1" in said
    assert "Stage-1 minimum" not in "".join(readme_section(board))  # the verdict states the round's own power
    page = html(board)
    claims_table = page.split("Claims tested on fresh seeds")[1].split("</table>")[0]
    assert "hard beta=2" in claims_table and "decoupled t=0.1" in claims_table
    assert "--only &#x27;leaderboard/fresh/image/hard:beta=2,tau_plus=0.1/*&#x27;" in claims_table  # how to rerun it
    assert "| hard beta=2 | ntxent t=0.05 | 8-15 | +2.10" in "\n".join(markdown(board, "c"))
