"""Issue 40 wired to stage 1 and the records: the arms by rule, the pipeline commands, the curve points, the page's
JSON, and the suite before any column is selected."""

from __future__ import annotations

import json
import math

import pytest

from benchmarks import robustness as rb
from benchmarks import robustness_cells as rc
from benchmarks import robustness_page, stage1
from benchmarks.leaderboard_cells import run_cells
from benchmarks.suites import BASELINE, STAGE1_SEEDS, Config, configuration, profile_temperature, sweeps
from common.protocols import PROTOCOL
from common.stats import CurveScore, Score
from image.run import planned_keys as image_keys

IMAGE = ("image", None)


def _selection(family: str, spec: str | None, temperature: float = 0.5) -> stage1.Selection:
    return stage1.Selection(family, None if spec is None else Config(family, spec, temperature), "why")


def test_the_two_strongest_families_by_mean_delta_on_the_stage1_seeds_ties_by_name():
    seeds = (0, 1, 2)
    chosen = [_selection("ring", "ring:lower=0.5"), _selection(BASELINE, "ntxent", 0.2), _selection("fnc", "fnc:k=1"),
              _selection("hard", "hard:beta=2"), _selection("mochi", "mochi:num_mix=4")]
    by_key = {("ntxent", 0.2): {0: 50.0, 1: 60.0, 2: 70.0, 3: 0.0},
              # mean Δ +1 (seeds 0-2); seed 3 is no stage-1 seed and must not count (it would make ring the strongest)
              ("ring:lower=0.5", 0.5): {0: 51.0, 1: 61.0, 2: 71.0, 3: 100.0},
              ("fnc:k=1", 0.5): {0: 53.0, 1: 59.0, 2: 70.0},  # Δ +3, −1, 0: mean +0.67
              ("hard:beta=2", 0.5): {0: 49.0, 1: 63.0, 2: 71.0},  # Δ −1, +3, +1: mean +1, ties with ring
              ("mochi:num_mix=4", 0.5): {0: 40.0, 1: 40.0, 2: 40.0}}
    base, families = rc.strongest(chosen, by_key, seeds)
    assert base == Config(BASELINE, "ntxent", 0.2)
    assert [f.family for f in families] == ["hard", "ring"]  # both +1: by name; fnc (+0.67) third
    by_key[("fnc:k=1", 0.5)][2] = 72.0  # now fnc's mean Δ is +1.33: the strongest
    assert [f.family for f in rc.strongest(chosen, by_key, seeds)[1]] == ["fnc", "hard"]
    # a family not selected yet could be among the strongest: no arms, and why
    why = rc.strongest([*chosen[:3], _selection("hard", None), _selection("mochi", None)], by_key, seeds)
    assert why == "stage 1 has selected 3 of 5 families (waiting: hard, mochi)"


def _stage1_scores(modality: str, dataset: str | None, bonus: dict[str, float]) -> list[Score]:
    """Every configuration of every sweep on all stage-1 seeds, the second value of each grid best (no edge step),
    a family's best at 50 + ``bonus[family]`` (NT-Xent 50); the untrained encoder at 20 + seed."""
    column = stage1.ONE_COLUMN.get(modality, dataset)
    out = [Score(modality, column, "untrained", s, 20.0 + s, PROTOCOL[modality]) for s in STAGE1_SEEDS[modality]]
    for sweep in sweeps(modality):
        for i, value in enumerate(sweep.values):
            config = configuration(modality, sweep, value)
            level = 50.0 + bonus.get(sweep.family, 0.0) - (0.0 if i == 1 else 5.0)
            out += [Score(modality, column, stage1.label_of(modality, config), s, level + 0.1 * s, PROTOCOL[modality],
                          config.spec, config.temperature) for s in STAGE1_SEEDS[modality]]
    return out


def test_a_column_gets_arms_only_once_its_stage1_is_complete():
    scores = _stage1_scores("image", None, {"ring": 2.0, "hardness": 3.0, "hard": 1.0})
    scores += [s for s in _stage1_scores("graph", "MUTAG", {"fnc": 1.0, "debiased": 0.5}) if s.seed != 9]
    chosen = rc.plan(scores)
    assert list(chosen.baseline) == [IMAGE] and [f.family for f in chosen.families[IMAGE]] == ["hardness", "ring"]
    ntxent = next(s for s in sweeps("image") if s.family == BASELINE)
    assert chosen.baseline[IMAGE] == configuration("image", ntxent, ntxent.values[1])
    assert chosen.untrained[IMAGE] == {s: 20.0 + s for s in STAGE1_SEEDS["image"]}
    assert set(chosen.waiting) == set(rb.COLUMNS) - {IMAGE}
    assert chosen.waiting[("graph", "MUTAG")] == (
        "stage 1 has selected 0 of 9 families (waiting: ntxent, decoupled, dclw, hardness, hard, debiased, fnc, ring, "
        "mochi)")
    cells = rb.declared_cells(chosen.baseline, chosen.families)
    assert {(c.modality, c.dataset) for c in cells} == {IMAGE} and len(cells) == 4 * 6
    with pytest.raises(ValueError, match="declared together"):
        rb.declared_cells(chosen.baseline, {})


def _arms() -> tuple[dict, dict]:
    """Synthetic selections in every column: NT-Xent off the profile temperature, two families."""
    families = (Config("hardness", "hardness:alpha=9", 0.5), Config("ring", "ring:lower=0.5,upper=1", 0.3))
    return ({c: Config("ntxent", "ntxent", 0.2) for c in rb.COLUMNS}, {c: families for c in rb.COLUMNS})


def _flag(argv: tuple[str, ...], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def test_commands_spell_every_declared_setting_and_the_lr_reads_back_exactly():
    cells = rb.declared_cells(*_arms())
    suite = rc.suite_cells(cells)
    assert len({c.key for c in suite}) == len(suite)
    by_key = {c.key: c for c in suite}
    image = by_key["robustness/image/hard:beta=1,tau_plus=0.1@t=0.5/batch=64/seed=0"].argv
    assert image[:6] == ("image", "run", "--profile", "quick", "--seed", "0") and "--eval-at" not in image
    assert _flag(image, "--epochs") == "8" and _flag(image, "--temperature") is None  # the profile's temperature
    assert float(_flag(image, "--lr")) == 1e-3 * math.sqrt(0.5) and _flag(image, "--lr") == "0.0007071067811865476"
    long = by_key["robustness/image/ntxent@t=0.2/batch=128/epochs=32/seed=3"].argv
    assert _flag(long, "--eval-at") == "4,8,16" and _flag(long, "--epochs") == "32"
    assert _flag(long, "--temperature") == "0.2"
    graph = [c for c in suite if c.key.startswith("robustness/graph/MUTAG/ntxent@t=0.2/batch=128")]
    assert len(graph) == 1 and "--seed" not in graph[0].argv and "--repeats" not in graph[0].argv  # one process
    assert _flag(graph[0].argv, "--eval-at") == "20,50,100" and _flag(graph[0].argv, "--epochs") == "200"
    sentence = by_key["robustness/sentence/ring:lower=0.5,upper=1@t=0.3/batch=100/seed=2"].argv
    assert _flag(sentence, "--steps") == "3200" and {"--no-minilm", "--no-random", "--no-progress"} <= set(sentence)
    assert _flag(by_key["robustness/sentence/ntxent@t=0.2/batch=400/seed=0"].argv, "--eval-at") == "200,400"
    for cell in cells:  # every declared lr and length reads back exactly from its command
        for command in rc.suite_cells([cell]):
            length = _flag(command.argv, "--steps" if cell.modality == "sentence" else "--epochs")
            assert float(_flag(command.argv, "--lr")) == cell.lr and int(length) == cell.length


def test_a_cell_that_is_a_stage1_cell_has_the_same_resume_identity():
    """The image run at the profile's batch and length is the stage-1 run: already recorded, it counts as done."""
    baseline, _ = _arms()
    config = baseline[IMAGE]
    suite = {c.key: c for c in rc.suite_cells(rb.declared_cells(*_arms()))}
    stage1_argv = run_cells("image", None, config, (1,), "k")[0].argv[1:]
    planned = image_keys(list(suite["robustness/image/ntxent@t=0.2/batch=128/seed=1"].argv[1:]))
    assert planned == image_keys(list(stage1_argv))
    other = image_keys(list(suite["robustness/image/ntxent@t=0.2/batch=64/seed=1"].argv[1:]))
    assert other[0] == planned[0] and set(other[1:]).isdisjoint(planned[1:])  # one untrained encoder per seed
    # graph and sentence commands parse with the pipelines' own parsers, to the declared settings
    from graph.__main__ import parse_args

    args = parse_args(list(suite["robustness/graph/PROTEINS/ntxent@t=0.2/batch=256"].argv[1:]))
    assert (args.settings.batch_size, args.settings.lr, args.settings.epochs) == (256, 1e-3 * math.sqrt(2), 200)
    assert args.settings.repeats == len(STAGE1_SEEDS["graph"]) and args.seed == STAGE1_SEEDS["graph"][0]
    from sentence.__main__ import build_parser

    args = build_parser().parse_args(list(suite["robustness/sentence/ntxent@t=0.2/batch=800/seed=0"].argv[1:]))
    assert (args.batch_size, args.steps, args.lr, args.seed) == (800, 400, 2e-3 * math.sqrt(2), 0)


def _curves(cells, value, protocol=None) -> list[CurveScore]:
    """A curve point per (cell, seed, scored length) with ``value(cell, seed, at)``."""
    return [CurveScore(c.modality, c.dataset or stage1.ONE_COLUMN[c.modality], c.spec, c.temperature, c.batch, c.length,
                       at, seed, value(c, seed, at), PROTOCOL[c.modality] if protocol is None else protocol)
            for c in cells for seed in c.seeds for at in c.scored_at]


def test_points_are_the_current_protocol_last_record_wins_keyed_as_analyse_reads_them():
    cells = rb.declared_cells(*_arms())
    old = _curves(cells, lambda c, s, at: -1.0, protocol=0)
    first = _curves(cells, lambda c, s, at: 0.0)
    last = _curves(cells, lambda c, s, at: 50.0 + s + (1.0 if c.spec != "ntxent" else 0.0) * math.log2(c.batch))
    untrained = [CurveScore("image", "CIFAR-10 (JPEG q75)", "", None, 128, 0, 0, 0, 10.0, PROTOCOL["image"])]
    points = rc.points_from([*first, *old, *last, *untrained])
    assert len(points) == len(last) and set(points.values()) - {v.value for v in last} == set()
    image = next(c for c in cells if c.modality == "image" and c.spec == "ring:lower=0.5,upper=1" and c.batch == 64)
    assert points[("image", None, image.spec, 0.3, 64, 8, 8, 2)] == 52.0 + 6.0
    assert ("graph", "MUTAG", "ntxent", 0.2, 128, 200, 50, 9) in points
    result = rb.analyse(cells, points)
    slopes = [t for c in result["columns"] for t in c["tests"] if t["kind"] == "slope"]
    assert all(t["n"] == t["seeds_declared"] for t in slopes)
    assert all(t["mean"] == pytest.approx(1.0) for t in slopes)  # each arm gains 1 point per doubling


def test_the_json_round_trips_to_the_same_page_and_waiting_columns_keep_every_verdict_pending(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    baseline, families = _arms()
    ready = {IMAGE, ("sentence", None)}
    baseline = {c: v for c, v in baseline.items() if c in ready}
    families = {c: v for c, v in families.items() if c in ready}
    cells = rb.declared_cells(baseline, families)
    points = rc.points_from(_curves(cells, lambda c, s, at: 50.0 + s * (1.0 + (c.spec != "ntxent")) + at / 1000))
    waiting = {c: "stage 1 has selected 8 of 9 families (waiting: mochi)" for c in rb.COLUMNS if c not in ready}
    result = rb.analyse(cells, points, {IMAGE: {0: 20.0, 1: 21.0}}, waiting)
    tests = [t for c in result["columns"] for t in c["tests"]]
    assert tests and all(t["n"] == t["seeds_declared"] for t in tests)  # every declared test complete ...
    assert all(t["verdict"] == "pending" and t["p_holm"] is None for t in tests)  # ... but three columns wait
    page = robustness_page.write(result, tmp_path, pyplot)
    text = page.read_text()
    assert text == robustness_page.markdown(json.loads((tmp_path / "robustness.json").read_text()))
    assert text == robustness_page.markdown(result)  # the JSON holds everything the page shows
    assert "## Waiting for stage 1" in text and "- graph MUTAG: stage 1 has selected 8 of 9 families" in text
    assert "| sentence | 1600 | 0.004 | 200 steps | 0-2 |" in text
    assert "| image | 64 | 0.000707 | 8 epochs | 0-3 |" in text
    assert text.count("\n## ") == 3 and (tmp_path / "robustness.png").read_bytes()[:4] == b"\x89PNG"


def test_the_suite_before_any_selection_says_which_columns_wait_and_runs_only_the_fixed_hcl_arm(capsys, tmp_path):
    from benchmarks.__main__ import main

    waiting = rc.plan([])
    assert set(waiting.waiting) == set(rb.COLUMNS) and not waiting.baseline
    cells = rc.cells_of(waiting)
    # HCL at its paper default: images 5 batches x 4 seeds + the 32-epoch run x 4; graphs 5 per data set (repeats
    # 0-9 in one process; MUTAG's 188 graphs stop it at 128); sentences 5 batches x 3 seeds
    assert len(cells) == 52 and all(f"/{rb.HCL_PAPER}@t=" in c.key for c in cells)
    assert rc.waiting_line(waiting.waiting).startswith("robustness: 5 of 5 columns wait for stage 1, so only their HCL")

    baseline, families = _arms()
    graph = ("graph", "MUTAG")
    mutag = rc.cells_of(rc.Plan({graph: baseline[graph]}, {graph: families[graph]},
                                {c: "why" for c in rb.COLUMNS if c != graph}, {}, {}))
    assert len(mutag) == 4 * 3 + 52 - 3  # MUTAG: 3 batches
    # a column still waiting whose NT-Xent stage 1 has selected runs that NT-Xent's cells too (images: 5 batches and
    # the 32-epoch run, 4 seeds each), the same cells its full selection will declare
    early = rc.cells_of(rc.Plan({}, {}, {c: "why" for c in rb.COLUMNS}, {}, {IMAGE: baseline[IMAGE]}))
    tuned = [c for c in early if c.key.startswith(f"robustness/image/ntxent@t={baseline[IMAGE].temperature:g}/")]
    assert len(early) == 52 + 24 and len(tuned) == 24
    declared = rc.cells_of(rc.Plan({IMAGE: baseline[IMAGE]}, {IMAGE: families[IMAGE]},
                                   {c: "why" for c in rb.COLUMNS if c != IMAGE}, {}, {}))
    assert {c.key for c in tuned} <= {c.key for c in declared}
    assert any(c.key == "robustness/graph/MUTAG/ntxent@t=0.2/batch=128" and c.argv[:3] == ("graph", "--dataset", "MUTAG")
               for c in mutag)

    # the command runs the suite of the committed records' stage 1, whatever it has selected so far
    assert main(["run", "robustness", "--dry-run", "--records", str(tmp_path)]) == 0
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert ("columns wait for stage 1" in out.err) == bool(rc.committed_plan().waiting)  # said by `run` alone
    committed = rc.robustness_suite("quick")
    assert lines[0].startswith(f"robustness-quick, shard 1/1: {len(committed)} cells, 0 done")
    assert {line.split(": ")[0].strip() for line in lines[1:]} == {c.key for c in committed}


def test_the_fixed_cells_are_the_hcl_and_tuned_ntxent_cells_a_selection_declares():
    for column in rb.COLUMNS:
        baseline = _arms()[0][column]
        declared = rb.declared_cells({column: baseline}, {column: _arms()[1][column]})
        assert rb.fixed_cells({column: None}) == [c for c in declared if c.spec == rb.HCL_PAPER]
        assert rb.fixed_cells({column: baseline}) == [c for c in declared if c.spec in (rb.HCL_PAPER, baseline.spec)]


def test_profile_temperatures_are_left_off_the_command():
    config = rc.suite_cells([rb.Cell("sentence", None, "ntxent", profile_temperature("sentence"), 400, 2e-3, 800,
                                     (800,), (0,))])[0]
    assert "--temperature" not in config.argv and config.key == "robustness/sentence/ntxent@t=0.1/batch=400/seed=0"


def test_points_reads_every_pipelines_curves():
    """One record of each pipeline as it writes them: every scored point of each reaches the analysis."""
    from tests.image.test_report import HARD, _quick
    from tests.sentence.test_run import _qt

    image_run = _quick(HARD, 1, 50.0, epochs=32, temperature=0.2)  # scored at 4/8/16/32 epochs
    image_run["metrics"]["linear_top1_at"] = {"4": 30.0, "8": 40.0, "16": 45.0, "32": 50.0}
    sentence_run = {**_qt(1), "protocol": PROTOCOL["sentence"]}  # no --eval-at: one point at its last step
    graph_run = {"pipeline": "graph", "seed": 0, "protocol": PROTOCOL["graph"], "wall_time_s": 60.0,  # a MUTAG HCL cell
                 "metrics": {"accuracy": 86.2, "accuracy_at": {"20": 84.0, "50": 85.1, "100": 85.9, "200": 86.2}},
                 "config": {"batch_size": 128, "dataset": "MUTAG", "epochs": 200, "eval_at": [20, 50, 100],
                            "hidden": 32, "layers": 3, "lr": 0.001, "objective": HARD, "profile": "paper", "repeat": 0,
                            "seed": 0, "temperature": 0.2}}
    points = rc.points([image_run, sentence_run, graph_run])
    assert sorted((k[0], k[6]) for k in points) == sorted(  # (modality, scored at) of every point
        [("image", at) for at in (4, 8, 16, 32)] + [("sentence", 800)] + [("graph", at) for at in (20, 50, 100, 200)])
    assert points[next(k for k in points if k[0] == "graph" and k[6] == 50)] == 85.1
