"""Harness: suite expansion, sharding, resume by harness records and by the pipelines' own keys, dry-run,
image cells on a GPU, table rendering."""

import json
import os
import subprocess
import sys
import time

import pytest

from benchmarks.__main__ import main
from benchmarks.published import INFOGRAPH
from benchmarks.suites import SUITES, expand, shard
from common.cli import run_main
from common.paths import REPO_ROOT, data_dir
from common.records import append_record
from graph.report import format_table, summarize


def test_suites_expand_to_unique_cells_for_both_profiles():
    for suite in SUITES:
        for profile in ("quick", "paper"):
            keys = [c.key for c in expand(suite, profile)]
            assert keys and len(keys) == len(set(keys))
    # 8 data sets x (infograph + 2 conventions x (debiased + 3 betas)) in the paper profile.
    assert len(expand("graph", "paper")) == 8 * (1 + 2 * (1 + 3))
    assert len(expand("graph", "quick")) == 8 * (1 + 2 * (1 + 1))


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_every_cell_is_in_exactly_one_shard(count):
    cells = expand("graph", "paper")
    shards = [shard(cells, i, count) for i in range(1, count + 1)]
    keys = [c.key for s in shards for c in s]
    assert sorted(keys) == sorted(c.key for c in cells)
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert [c.key for c in shard(list(reversed(cells)), 1, count)] == [c.key for c in shards[0]]


def test_bad_names_list_the_valid_ones(capsys):
    with pytest.raises(ValueError, match="choose from graph, image, sentence"):
        expand("nope", "quick")
    with pytest.raises(SystemExit) as info:
        run_main(main, ["run", "nope", "--dry-run"])
    assert info.value.code == 2 and "choose from" in capsys.readouterr().err
    with pytest.raises(ValueError, match="shard"):
        shard([], 3, 2)


def test_a_harness_record_marks_only_what_the_records_cannot_tell(tmp_path, capsys):
    """A command that is no pipeline run (loss speed) is done once the harness marked it; a pipeline cell is done
    only when its runs are recorded at today's protocol, whatever a marker says."""
    speed, sentence = expand("loss-speed", "quick")[0], expand("sentence", "quick")
    for key in (speed.key, sentence[0].key):
        append_record(tmp_path / "old.jsonl", {"pipeline": "harness", "config": {"cell": key}, "metrics": {}})
    for suite, summary in (("loss-speed", "1 cells, 1 done, 0 to run"), ("sentence", "3 cells, 0 done, 3 to run")):
        with pytest.raises(SystemExit) as info:
            run_main(main, ["run", suite, "--records", str(tmp_path), "--dry-run"])
        out = capsys.readouterr().out
        assert info.value.code == 0 and summary in out, out
    assert str(tmp_path / "sentence-quick-shard1of1.jsonl") in out and sentence[0].key + ":" in out


def test_dry_run_skips_leaderboard_cells_whose_scores_are_recorded_however_they_ran(tmp_path, capsys):
    import json
    from pathlib import Path

    from benchmarks.stage1 import collect

    committed = Path(__file__).resolve().parents[2] / "tables" / "records"
    lines = [line for f in sorted(committed.glob("*.jsonl")) for line in f.read_text().splitlines()]
    from common.protocols import PROTOCOL

    one = json.loads(next(line for line in lines if (s := collect([json.loads(line)])) and s[0].modality == "image"
                          and s[0].label == "ntxent" and s[0].protocol == PROTOCOL["image"]))  # by hand, no harness record
    seed = one["seed"] = one["config"]["seed"] = 1  # as if it had run at a stage-1 seed
    (tmp_path / "by-hand.jsonl").write_text(json.dumps(one) + "\n")
    with pytest.raises(SystemExit) as info:
        run_main(main, ["run", "leaderboard", "--records", str(tmp_path), "--dry-run", "--only", "leaderboard/image/ntxent/*"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and "4 cells, 1 done, 3 to run" in out
    assert f"leaderboard/image/ntxent/seed={seed}:" not in out and "leaderboard/image/ntxent/seed=" in out


def test_only_runs_the_matching_cells_and_shards_split_them(tmp_path, capsys):
    def dry(*extra):
        with pytest.raises(SystemExit) as info:
            run_main(main, ["run", "leaderboard", "--records", str(tmp_path), "--dry-run", *extra])
        out = capsys.readouterr()
        cells = [line for line in out.out.splitlines()[1:] if line.startswith("  ")]  # not the priced total
        return info.value.code, [line.split(": ")[0].strip() for line in cells], out.err

    mutag = [c.key for c in expand("leaderboard", "quick") if c.key.startswith("leaderboard/graph/MUTAG/")]
    image = [c.key for c in expand("leaderboard", "quick") if c.key.startswith("leaderboard/image/ntxent@")]
    code, keys, _ = dry("--only", "leaderboard/graph/MUTAG/*", "--only", "leaderboard/image/ntxent@*")
    declared = {f"leaderboard/image/ntxent@t={t}/seed={s}" for t in (0.1, 0.2, 0.3) for s in range(4)}
    # the grid's own cells, plus any edge extension that the committed stage-1 records have earned
    assert code == 0 and mutag and declared <= set(image) and len(image) % 4 == 0
    assert sorted(keys) == sorted([*mutag, *image])
    halves = [dry("--only", "leaderboard/graph/*", "--shard", f"{i}/2")[1] for i in (1, 2)]
    assert sorted(halves[0] + halves[1]) == sorted(dry("--only", "leaderboard/graph/*")[1]) and not set(halves[0]) & set(halves[1])
    code, keys, err = dry("--only", "nothing/*")
    assert code == 2 and not keys and "no cell of leaderboard matches --only nothing/*" in err


def test_one_unsharded_run_goes_on_while_finished_cells_call_for_more(tmp_path, capsys, monkeypatch):
    """Like the leaderboard's edge steps: a cell that exists only once another has finished runs in the same command;
    a sharded run leaves the new cells to the next command (its shards would be reassigned)."""
    from benchmarks.harness import read_folder
    from benchmarks.suites import SuiteCell

    def growing(profile):  # one cell more for each finished one, up to four (a quiet command that succeeds)
        done = sum(r["pipeline"] == "harness" for r in read_folder(tmp_path / "records"))
        return [SuiteCell("growing", f"growing/{i}", ("compileall", "-q", "-l", str(tmp_path))) for i in range(min(done + 1, 4))]

    monkeypatch.setitem(SUITES, "growing", growing)

    def run(*extra):
        with pytest.raises(SystemExit) as info:
            run_main(main, ["run", "growing", "--records", str(tmp_path / "records"), "--no-progress", *extra])
        return info.value.code, capsys.readouterr().out

    code, out = run("--shard", "1/2")
    assert code == 0 and "1 cells, 0 done, 1 to run" in out and "call for" not in out
    code, out = run()
    assert code == 0 and "2 cells, 1 done, 1 to run" in out and out.count("call for 1 more") == 2, out
    assert sorted(r["config"]["cell"] for r in read_folder(tmp_path / "records")) == [f"growing/{i}" for i in range(4)]


def _graph_record(method, seed, accuracy, convention="paper", beta=0.0):
    config = dict(dataset="MUTAG", method=method, convention=convention, tau_plus=0.5 if method != "infograph" else 0.0,
                  beta=beta, repeat=seed, seed=seed, profile="quick", epochs=10, batch_size=128, hidden=32, layers=3,
                  lr=0.001)
    return {"pipeline": "graph", "protocol": 1, "config": config, "seed": seed, "wall_time_s": 2.0,
            "metrics": {"accuracy": accuracy, "seconds_per_epoch": 0.5}}


def test_graph_table_renders_paired_deltas_exactly():
    records = [_graph_record("infograph", s, a) for s, a in ((0, 86.0), (1, 88.0), (2, 87.0))]
    records += [_graph_record("hard", s, a, beta=1.0) for s, a in ((0, 87.0), (1, 89.2), (2, 88.1))]  # Δ 1, 1.2, 1.1: t = 19
    records += [_graph_record("hard", s, a, beta=2.0) for s, a in ((0, 89.0), (1, 87.0), (2, 88.0))]  # Δ 3, -1, 1: t = 0.9
    assert format_table(summarize(records), INFOGRAPH).splitlines()[2:] == [
        "| quick | MUTAG | jsd | 87.00 ± 1.00 | 3 |  | 0.500 | 2.0 | 89.01 ± 1.13 |",
        "| quick | MUTAG | jsd beta=1,tau_plus=0.5 | **88.10 ± 1.10** | 3 | +1.10 ± 0.06* | 0.500 | 2.0 | 89.01 ± 1.13 |",
        "| quick | MUTAG | jsd beta=2,tau_plus=0.5 | 88.00 ± 1.00 | 3 | +1.00 ± 1.15 | 0.500 | 2.0 | 89.01 ± 1.13 |",
    ]


def test_unknown_profile_is_rejected():
    with pytest.raises(ValueError, match="profile"):
        expand("graph", "huge")


def test_sentence_losses_come_from_records_when_they_carry_them():
    from benchmarks.sentence_page import sentence_losses

    old = {"config": {"profile": "quick", "method": "hard"}}
    with_values = {"config": {"profile": "quick", "method": "hard", "tau_plus": 0.2, "beta": 3.0}}
    registry = {"config": {"profile": "quick", "method": "ring", "objective": {"name": "hard", "params": {"beta": 2}}}}
    other = {"config": {"profile": "paper", "method": "plain", "tau_plus": 0.5, "beta": 0.0}}
    defaults = {"plain": "tau_plus=0 beta=0", "debiased": "tau_plus=0.1 beta=0", "hard": "tau_plus=0.1 beta=1"}
    assert sentence_losses([old], "quick") == defaults
    assert sentence_losses([old, with_values, registry, other], "quick") == {
        **defaults, "hard": "tau_plus=0.2 beta=3", "ring": "tau_plus=0.1 beta=2"}


def test_epoch_speed_table_keeps_the_newest_record_of_each_machine_and_setting(tmp_path):
    from benchmarks.speed_pages import graph_speed_table

    def record(cpu, flushed, released_s):
        row = {"dataset": "MUTAG", "graphs": 188, "nodes": 3371, "released_s": released_s, "released_mask_s": 0.01,
               "ours_s": 0.02, "speedup_ours": released_s / 0.02}
        return {"pipeline": "graph-epoch-speed", "git_commit": "0" * 40, "finished_at": "t",
                "hardware": {"cpu": cpu, "cpu_count": 2, "torch_threads": 2, "gpu": None},
                "config": {"loops": ["released", "ours"], "epochs": 2, "flush_denormal": flushed},
                "metrics": {"rows": [row]}}

    records = [record("A", False, 0.04), record("A", False, 0.06), record("A", True, 0.08), record("B", False, 0.10)]
    text = graph_speed_table(records, tmp_path).read_text()
    assert text.count("## ") == 3 and "## A (2 cores), 2 torch threads, subnormals flushed" in text
    assert "| 0.060 |" in text and "| 0.040 |" not in text  # an older record of the same machine and setting is left out
    assert "| 0.080 |" in text and "| 0.100 |" in text and "| 5.0x |" in text


def test_loss_speed_table_has_a_section_per_machine_from_its_newest_record(tmp_path):
    from benchmarks.speed_pages import loss_speed_table

    def record(cpu, ms):
        row = {"inputs": "B=256, d=128", "loss": "ours", "seconds": ms / 1000, "ratio": 1.0}
        return {"pipeline": "loss-speed", "git_commit": "0" * 40, "finished_at": "t",
                "hardware": {"cpu": cpu, "cpu_count": 2, "torch_threads": 2, "gpu": None}, "metrics": {"rows": [row]}}

    text = loss_speed_table([record("A", 1.5), record("A", 2.5), record("B", 3.5)], tmp_path).read_text()
    assert text.count("## ") == 2 and "## A (2 cores), 2 torch threads" in text
    assert "| 2.50 |" in text and "| 3.50 |" in text and "| 1.50 |" not in text  # an older record of A is left out
    assert (tmp_path / "loss_speed.png").stat().st_size > 0


def test_committed_tables_regenerate_identically_from_the_committed_records(tmp_path):
    """Records from before and after the objective registry render the same tables (mapped once when read)."""
    from benchmarks.tables import TABLES, main

    readme = TABLES.parent / "README.md"
    (tmp_path / "README.md").write_text(readme.read_text())  # its leaderboard section is generated too
    out = tmp_path / "tables"
    assert main(["--records", str(TABLES / "records"), "--out", str(out)]) == 0
    written = sorted(p.name for p in out.iterdir() if p.suffix in (".md", ".csv", ".tex", ".json", ".html"))
    assert written == sorted(p.name for p in TABLES.iterdir() if p.suffix in (".md", ".csv", ".tex", ".json", ".html"))
    for name in written:
        assert (out / name).read_text() == (TABLES / name).read_text(), name
    assert (tmp_path / "README.md").read_text() == readme.read_text(), "README.md's leaderboard section is stale"


def _bench(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """``python -m benchmarks ARGS``, the real command line."""
    return subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.parametrize("launcher", ["local", "slurm"])
def test_a_dry_run_with_a_launcher_starts_and_submits_nothing(tmp_path, launcher):
    start = time.perf_counter()
    result = _bench("run", "smoke", "--launcher", launcher, "--dry-run", "--records", str(tmp_path / "records"),
                    "--log-dir", str(tmp_path / "logs"))
    assert result.returncode == 0, result.stderr
    assert time.perf_counter() - start < 30  # one 1-epoch MUTAG cell alone takes longer than listing both
    assert "2 cells, 0 done, 2 to run" in result.stdout and "smoke/MUTAG/infograph:" in result.stdout
    assert f"would submit 2 {launcher} task(s); dry run: nothing submitted" in result.stdout
    assert not (tmp_path / "records").exists() and not (tmp_path / "logs").exists()  # no record, no submitit folder


def test_committed_runs_of_an_older_protocol_version_are_history_not_done(tmp_path):
    """The paper graph grid was run by hand into tables/records/graph.jsonl before graph's protocol v1 (a change of
    initialisation order moves every score): today the same commands are other runs, which the harness lists."""
    import fnmatch
    import json

    from common.protocols import PROTOCOL, protocol_of

    lines = (REPO_ROOT / "tables" / "records" / "graph.jsonl").read_text().splitlines()
    old = [line for line in lines if (r := json.loads(line)).get("config", {}).get("dataset") == "MUTAG"
           and r["config"].get("profile") == "paper" and protocol_of(r) < PROTOCOL["graph"]]
    (tmp_path / "graph.jsonl").write_text("\n".join(old) + "\n")  # the history alone, whatever runs later add
    result = _bench("run", "graph", "--profile", "paper", "--dry-run", "--only", "graph/MUTAG/*", "--records", str(tmp_path))
    assert old and result.returncode == 0, result.stderr
    head, *listed = result.stdout.splitlines()
    n = len([c for c in expand("graph", "paper") if fnmatch.fnmatch(c.key, "graph/MUTAG/*")])
    assert f"{n} cells, 0 done, {n} to run" in head and len(listed) == n, head


@pytest.mark.skipif(not (data_dir() / "tu" / "MUTAG" / "raw").is_dir(), reason="staged MUTAG not present")
def test_a_run_made_by_hand_into_any_file_of_the_folder_counts_by_the_pipelines_own_key(tmp_path):
    records = tmp_path / "records"
    by_hand = [sys.executable, "-m", "graph", "--dataset", "MUTAG", "--objective", "infograph", "--epochs", "1",
               "--repeats", "1", "--records", str(records / "mine.jsonl"), "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HARDNEG_CACHE": str(tmp_path / "cache")}
    assert subprocess.run(by_hand, cwd=REPO_ROOT, env=env, capture_output=True, timeout=300).returncode == 0
    result = _bench("run", "smoke", "--records", str(records), "--dry-run")
    assert "2 cells, 1 done, 1 to run" in result.stdout, result.stdout + result.stderr
    assert "smoke/MUTAG/infograph:" not in result.stdout and "smoke/MUTAG/jsd:tau_plus=0.5,beta=1:" in result.stdout
    # another seed is another run: the pipeline's key holds the seed, so the cell is not done
    (records / "mine.jsonl").write_text((records / "mine.jsonl").read_text().replace('"seed": 0', '"seed": 7'))
    assert "2 cells, 0 done, 2 to run" in _bench("run", "smoke", "--records", str(records), "--dry-run").stdout


def test_device_and_gpu_switches_are_appended_to_image_cells_only(tmp_path):
    result = _bench("run", "ablations", "--dry-run", "--records", str(tmp_path), "--device", "cuda", "--bf16",
                    "--channels-last")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines()[1:] if line.startswith("  ")]
    image = [line for line in lines if "python -m image " in line]
    assert image and all(line.endswith("--device cuda --bf16 --channels-last") for line in image)
    assert all("--device" not in line for line in lines if line not in image)


def test_gpu_flags_that_cannot_work_are_refused_in_one_line(tmp_path):
    for args, message in ((["--bf16"], "go with --device"),
                          (["--device", "cuda", "--launcher", "local", "--gpus-per-task", "0"], "no GPU to run on")):
        result = _bench("run", "image", "--records", str(tmp_path), *args)
        assert result.returncode == 2 and message in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr


def test_tables_out_that_is_a_file_or_under_one_is_one_line(tmp_path):
    afile = tmp_path / "file.md"
    afile.write_text("keep\n")
    for out, message in ((afile, "is a file; give the folder"), (afile / "sub", "is a file, so the folder cannot be made")):
        result = _bench("tables", "--out", str(out), "--records", str(tmp_path))
        assert result.returncode == 2 and message in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
    assert afile.read_text() == "keep\n"


def test_objectives_where_prints_every_familys_implementation_as_a_file_line_that_defines_it(capsys):
    from pathlib import Path

    from common.objectives import REGISTRY

    with pytest.raises(SystemExit) as info:
        run_main(main, ["objectives", "--where"])
    lines = capsys.readouterr().out.splitlines()
    assert info.value.code == 0 and [line.split()[0] for line in lines] == list(REGISTRY)
    root = Path(__file__).resolve().parents[2]
    for line in lines:
        for place in line.split()[2::2]:
            path, number = place.rsplit(":", 1)
            assert (root / path).read_text().splitlines()[int(number) - 1].startswith("def ")


def test_a_round_changed_after_its_fresh_seeds_ran_stops_the_leaderboard_before_any_cell(tmp_path):
    ran = {"command": "python -m image run --profile quick --seed 8 --objective hard", "pipeline": "harness",
           "config": {"cell": "leaderboard/fresh/image/hard/seed=8", "suite": "leaderboard", "round": "0123456789abcdef"},
           "finished_at": "2026-12-07T18:33:12+00:00", "git_commit": "4cb2c73", "hardware": {"cpu": "x", "cpu_count": 2},
           "metrics": {}, "protocol": None, "seed": 0, "versions": {}, "wall_time_s": 1.0}
    (tmp_path / "leaderboard-quick-shard1of1.jsonl").write_text(json.dumps(ran) + "\n")
    for extra in (("--dry-run",), ()):  # a failing check would run a MUTAG cell (about a minute), not hours of images
        result = _bench("run", "leaderboard", "--records", str(tmp_path), "--only", "leaderboard/graph/MUTAG/ntxent",
                        *extra, timeout=60)
        assert result.returncode == 2 and "changed after its fresh seeds ran" in result.stderr, result.stderr
        assert len(result.stderr.splitlines()) == 1 and "to run" not in result.stdout
    assert len((tmp_path / "leaderboard-quick-shard1of1.jsonl").read_text().splitlines()) == 1  # nothing appended
