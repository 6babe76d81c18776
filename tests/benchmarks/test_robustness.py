"""The robustness design and its statistics on synthetic scores where the answer is known."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from benchmarks import robustness as rb
from benchmarks import robustness_page
from benchmarks.suites import Config

FAMILIES = (Config("hardness", "hardness:alpha=9", 0.5), Config("ring", "ring:lower=0.5,upper=1", 0.3))


def selections() -> tuple[dict, dict]:
    baseline = {c: Config("ntxent", "ntxent", 0.2) for c in rb.COLUMNS}
    return baseline, {c: FAMILIES for c in rb.COLUMNS}


def synthetic(cells, effect, noise: float = 0.05, seed: int = 0, drop: int = 0) -> dict:
    """Scores: baseline 50 + a seed effect; an arm adds ``effect(arm_index, modality, axis, point, seed)``; ``drop``
    scores are left out at the end."""
    rng = np.random.default_rng(seed)
    arms = {}
    scores = {}
    for cell in cells:
        column = (cell.modality, cell.dataset)
        index = arms.setdefault(column, {}).setdefault((cell.spec, cell.temperature), len(arms[column]))
        for s in cell.seeds:
            for point in cell.scored_at:
                axis = "length" if len(cell.scored_at) > 1 or cell.length != rb.run_length(cell.modality, cell.batch) \
                    else "negatives"
                x = cell.batch if axis == "negatives" else point
                base = 50 + s + 0.1 * math.log2(x)
                value = base + (effect(index, cell.modality, axis, x, s) + rng.normal(0, noise) if index else 0.0)
                scores[(cell.modality, cell.dataset, cell.spec, cell.temperature, cell.batch, cell.length, point, s)] = value
    for key in list(scores)[len(scores) - drop:]:
        del scores[key]
    return scores


def planted(index, modality, axis, x, seed):
    """Arm 1: a gain of 2 that shrinks by 1 point per doubling of the batch (seeds scatter around it) and by 3
    points from the shortest to the longest run; arm 2: a gain growing 1 per doubling; arm 3 (HCL): none."""
    spread = 0.05 * ((seed * 7919) % 5 - 2)  # per-seed slope deviation, mean 0 over any 5 consecutive seeds
    if axis == "negatives":
        return {1: 2 - (1 + spread) * math.log2(x / 128), 2: 1 + 1 * math.log2(x / 128), 3: 0.0}[index]
    first, last = rb.LENGTHS[modality][0], rb.LENGTHS[modality][-1]
    return {1: 4 - 3 * (x - first) / (last - first), 2: 1.0, 3: 0.0}[index]


def test_declared_cells():
    cells = rb.declared_cells(*selections())
    image = [c for c in cells if c.modality == "image"]
    assert len(image) == 4 * (5 + 1)  # four arms: five batches, and one 32-epoch run scored along the way
    assert list(dict.fromkeys((c.spec, c.temperature) for c in image)) == [
        ("ntxent", 0.2), *((f.spec, f.temperature) for f in FAMILIES), (rb.HCL_PAPER, 0.5)]
    by_batch = {c.batch: c for c in image if c.length == 8}
    assert by_batch[512].lr == pytest.approx(2e-3) and by_batch[32].lr == pytest.approx(0.5e-3)
    assert rb.scaled_lr("image", 128) == 1e-3 and all(c.seeds == (0, 1, 2, 3) for c in image)
    assert [c.scored_at for c in image if c.length == 32] == [(4, 8, 16, 32)] * 4
    graph = [c for c in cells if c.modality == "graph"]
    assert {c.dataset for c in graph} == {"PROTEINS", "IMDB-BINARY", "MUTAG"} and len(graph) == 4 * (5 + 5 + 3)
    # MUTAG has 188 graphs: a batch of 256 or 512 would be the whole set (the same negatives at two learning rates)
    assert sorted({c.batch for c in graph if c.dataset == "MUTAG"}) == [32, 64, 128] == list(rb.batches(("graph", "MUTAG")))
    assert [c.scored_at for c in graph if c.batch == 128][0] == (20, 50, 100, 200)
    assert all(c.seeds == tuple(range(10)) for c in graph)
    sentence = {c.batch: c for c in cells if c.modality == "sentence" and c.spec == "ntxent"}
    assert {b: c.length for b, c in sentence.items()} == {100: 3200, 200: 1600, 400: 800, 800: 400, 1600: 200}
    assert sentence[400].scored_at == (200, 400, 800) and sentence[1600].lr == pytest.approx(4e-3)
    # HCL at its paper default that stage 1 also selected is one arm, not two
    baseline, families = selections()
    families[("image", None)] = (FAMILIES[0], Config("hard", rb.HCL_PAPER, 0.5))
    assert len({(c.spec, c.temperature) for c in rb.declared_cells(baseline, families) if c.modality == "image"}) == 3
    with pytest.raises(ValueError, match="2 strongest"):
        rb.declared_cells(baseline, {**families, ("image", None): FAMILIES[:1]})
    with pytest.raises(ValueError, match="tuned ntxent"):
        rb.declared_cells({**baseline, ("image", None): FAMILIES[0]}, families)


def test_protocols_are_the_pipelines_profiles():
    from graph.config import PROFILES as GRAPH
    from image.config import PROFILES as IMAGE
    from sentence.config import PROFILES as SENTENCE

    quick = IMAGE["quick"]
    assert rb.PROTOCOLS["image"] == rb.Protocol(quick.batch_size, quick.lr, quick.epochs)
    assert quick.train_per_class * 10 * quick.epochs == 80_000  # 8 epochs over the same 10k images
    paper = GRAPH["paper"]
    assert rb.PROTOCOLS["graph"] == rb.Protocol(paper.batch_size, paper.lr, paper.epochs)
    train = SENTENCE["quick"].train
    assert rb.PROTOCOLS["sentence"] == rb.Protocol(train.batch_size, train.lr, train.steps)


def test_planted_slope_recovered_within_its_se_and_matches_numpy():
    cells = rb.declared_cells(*selections())
    result = rb.analyse(cells, synthetic(cells, planted))
    image = next(c for c in result["columns"] if c["modality"] == "image")
    test = next(t for t in image["tests"] if t["kind"] == "slope" and t["spec"] == FAMILIES[0].spec)
    assert abs(test["mean"] + 1) <= 2 * test["se"] and test["n"] == 4
    # an independent computation: numpy's least squares per seed, then a one-sample t test
    scores = synthetic(cells, planted)
    slopes = []
    for s in range(4):
        xs = np.log2(rb.BATCHES["image"])
        ds = [scores[("image", None, FAMILIES[0].spec, 0.5, b, 8, 8, s)] - scores[("image", None, "ntxent", 0.2, b, 8, 8, s)]
              for b in rb.BATCHES["image"]]
        slopes.append(np.polyfit(xs, ds, 1)[0])
    assert test["mean"] == pytest.approx(np.mean(slopes))
    assert test["se"] == pytest.approx(np.std(slopes, ddof=1) / 2)
    assert test["p"] == pytest.approx(stats.ttest_1samp(slopes, 0.0).pvalue)
    length = next(t for t in image["tests"] if t["kind"] == "difference" and t["spec"] == FAMILIES[0].spec)
    assert abs(length["mean"] + 3) <= 3 * length["se"]


def test_holm_over_every_declared_test_equals_a_hand_computation():
    cells = rb.declared_cells(*selections())
    result = rb.analyse(cells, synthetic(cells, planted))
    tests = [t for c in result["columns"] for t in c["tests"]]
    assert result["tests_declared"] == len(tests) == 2 * 3 * 5
    p = [t["p"] for t in tests]
    order = np.argsort(p, kind="stable")
    by_hand, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):  # the k-th smallest times (m - k + 1), kept monotone, capped at 1
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        by_hand[i] = running
    assert [t["p_holm"] for t in tests] == pytest.approx(by_hand)
    assert any(t["p_holm"] > t["p"] for t in tests)


def test_words_say_shrinks_grows_and_no_change():
    cells = rb.declared_cells(*selections())
    result = rb.analyse(cells, synthetic(cells, planted))
    image = next(c for c in result["columns"] if c["modality"] == "image")
    words = {(t["spec"], t["kind"]): t["words"] for t in image["tests"]}
    shrinking = words[(FAMILIES[0].spec, "slope")]
    assert "gain" in shrinking and " shrinks by " in shrinking and "per doubling of the batch" in shrinking
    assert " grows by " in words[(FAMILIES[1].spec, "slope")]
    assert " shrinks by " in words[(FAMILIES[0].spec, "difference")] and "from 4 to 32 epochs" in words[
        (FAMILIES[0].spec, "difference")]
    hcl = words[(rb.HCL_PAPER, "slope")]
    assert hcl.startswith("no change in the ") and " larger than " in hcl
    bound = next(t for t in image["tests"] if t["spec"] == rb.HCL_PAPER and t["kind"] == "slope")["bound"]
    assert f"larger than {bound:.2f} points per doubling" in hcl and bound > 0

    # a loss (negative Δ) that rises towards zero with the batch shrinks; one that falls further grows
    def losing(index, modality, axis, x, seed):
        return -planted(index, modality, axis, x, seed)

    result = rb.analyse(cells, synthetic(cells, losing))
    image = next(c for c in result["columns"] if c["modality"] == "image")
    words = {(t["spec"], t["kind"]): t["words"] for t in image["tests"]}
    assert "loss" in words[(FAMILIES[0].spec, "slope")] and " shrinks by " in words[(FAMILIES[0].spec, "slope")]
    assert "loss" in words[(FAMILIES[1].spec, "slope")] and " grows by " in words[(FAMILIES[1].spec, "slope")]


def test_nothing_judged_until_every_declared_test_has_its_seeds():
    cells = rb.declared_cells(*selections())
    result = rb.analyse(cells, synthetic(cells, planted, drop=1))
    tests = [t for c in result["columns"] for t in c["tests"]]
    assert all(t["p_holm"] is None and t["verdict"] == "pending" for t in tests)
    assert result["tests_complete"] == len(tests) - 1
    pending = [re.search(r"pending \((\d+) of (\d+) seeds\)", t["words"]) for t in tests]
    assert all(pending) and any(int(m[1]) < int(m[2]) for m in pending)


def test_page_json_and_plot(tmp_path):
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    cells = rb.declared_cells(*selections())
    untrained = {c: {s: 20.0 + s for s in rb.SEEDS[c[0]]} for c in rb.COLUMNS}
    result = rb.analyse(cells, synthetic(cells, planted), untrained)
    assert json.loads(json.dumps(result)) == result
    page = robustness_page.markdown(result)
    assert page.count("\n## ") == 5 and "| batch 32 |" in page and "| epochs 4 |" in page and "| steps 200 |" in page
    assert "untrained encoder 21.50 [" in page and " shrinks by " in page
    path = tmp_path / "robustness.png"
    robustness_page.plot(result, pyplot, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    robustness_page.plot(rb.analyse(cells, {}), pyplot, tmp_path / "empty.png")  # before any score: empty panels, no error
    assert "–" in robustness_page.markdown(rb.analyse(cells, {}))


SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_leaderboard.sh"


def run_script(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, cwd=SCRIPT.parents[1])


def test_gpu_script_parses_and_dry_run_prints_three_packed_runs(tmp_path):
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0
    records = tmp_path / "gpu"
    records.mkdir()
    (records / "image-gpu-leaderboard.jsonl").write_text('{"seed": 0, "config": {"seed": 0}}\n{"seed": 1}\n')
    # the arms' defaults where no stage-1 selection can be read (here: a python that fails)
    done = run_script(str(records), "--dry-run", env={"OUT_DIR": str(tmp_path / "runs"), "PYTHON": "false"})
    assert done.returncode == 0, done.stderr
    assert "no stage-1 selections could be read; the arms are the script's defaults" in done.stdout
    runs = [line for line in done.stdout.splitlines() if " -m image run " in line]
    assert [line.split(":")[0] for line in runs] == ["ntxent", "hcl", "best"]
    for line in runs:
        assert "--profile paper --arch resnet18 --device cuda --bf16 --channels-last" in line
        assert "--seed 2 " in line and f"--records {records}/image-gpu-leaderboard.jsonl" in line
    assert "--objective ntxent --temperature 0.2" in runs[0]
    assert "--objective hard:beta=1\\,tau_plus=0.1 --temperature 0.5" in runs[1]
    assert "--objective hard:beta=2\\,tau_plus=0.1 --temperature 0.5" in runs[2]
    epochs = int(re.search(r"--epochs (\d+)", runs[0])[1])
    assert epochs == (540 - 150) // 8 and "under the target of 100" in done.stdout
    assert not (tmp_path / "runs").exists()  # a dry run creates nothing

    # by default the arms are stage 1's selections in the committed records, as `benchmarks selections` prints them
    from benchmarks.stage1 import committed_scores, selected_rows

    rows = [r for r in selected_rows(list(committed_scores()), "image") if not r[3].startswith("waiting")]
    tuned = next((r for r in rows if r[2] == "ntxent"), None)
    selected = run_script(str(records), "--dry-run", env={"PYTHON": sys.executable})
    assert selected.returncode == 0, selected.stderr
    first = next(line for line in selected.stdout.splitlines() if line.startswith("ntxent: "))
    expected = f"--objective {tuned[3]} --temperature {tuned[4]}" if tuned else "--objective ntxent --temperature 0.2"
    assert expected in first and "no stage-1 selections could be read" not in selected.stdout

    chosen = run_script(str(records), "5", "--dry-run", env={"EPOCHS": "120", "BEST_SPEC": "hardness:alpha=9",
                                                             "BEST_T": "0.3", "SEC_PER_EPOCH": "1"})
    assert chosen.returncode == 0 and "--seed 5 " in chosen.stdout and "--epochs 120 " in chosen.stdout
    assert "--objective hardness:alpha=9 --temperature 0.3" in chosen.stdout and "under the target" not in chosen.stdout
    assert run_script(str(tmp_path / "empty"), "--dry-run").stdout.count("--seed 0 ") == 3  # no records yet: seed 0
    assert run_script(str(records), "x1", "--dry-run").returncode == 2
    assert run_script().returncode == 2


def test_the_readme_line_of_each_modality_says_no_more_than_its_declared_tests():
    def test(modality, verdict, n=4, words="w"):
        return {"modality": modality, "verdict": verdict, "n": n, "seeds_declared": 4, "words": words}

    result = {"waiting": [{"modality": "graph", "name": "graph MUTAG"}],
              "columns": [{"modality": "image", "tests": [test("image", "pending", n=2), test("image", "pending")]},
                          {"modality": "sentence", "tests": [test("sentence", "change", words="the hard gain shrinks"),
                                                             test("sentence", "no change")]}]}
    lines = robustness_page.readme_section(result)
    assert "(tables/robustness.md)" in lines[0]
    assert lines[2] == "- **image**: curves running (1 of 2 declared tests have all their seeds)."
    assert lines[3].startswith("- **graph**: waits for stage 1 (graph MUTAG)")
    assert lines[4] == "- **sentence**: the hard gain shrinks."
    result["columns"][1]["tests"][0]["verdict"] = "no change"
    assert "no declared test finds a change" in robustness_page.readme_section(result)[4]
