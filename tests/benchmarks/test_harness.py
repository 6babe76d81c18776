"""Harness: suite expansion, sharding, resume by harness records, dry-run, table rendering."""

import pytest

from benchmarks.__main__ import main
from benchmarks.published import INFOGRAPH
from benchmarks.suites import SUITES, expand, shard
from common.cli import run_main
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


def test_dry_run_skips_cells_with_harness_records(tmp_path, capsys):
    cells = expand("sentence", "quick")
    append_record(tmp_path / "old.jsonl", {"pipeline": "harness", "config": {"cell": cells[0].key}, "metrics": {}})
    with pytest.raises(SystemExit) as info:
        run_main(main, ["run", "sentence", "--records", str(tmp_path), "--dry-run"])
    out = capsys.readouterr().out
    assert info.value.code == 0
    assert "3 cells, 1 done, 2 to run" in out and cells[0].key + ":" not in out and cells[1].key + ":" in out
    assert str(tmp_path / "sentence-quick-shard1of1.jsonl") in out


def test_dry_run_skips_leaderboard_cells_whose_scores_are_recorded_however_they_ran(tmp_path, capsys):
    import json
    from pathlib import Path

    from benchmarks.leaderboard import collect

    committed = Path(__file__).resolve().parents[2] / "tables" / "records"
    lines = [line for f in sorted(committed.glob("*.jsonl")) for line in f.read_text().splitlines()]
    one = next(line for line in lines if (s := collect([json.loads(line)])) and s[0].modality == "image"
               and s[0].label == "ntxent")  # a real record of a run made by hand, with no harness record
    (tmp_path / "by-hand.jsonl").write_text(one + "\n")
    seed = json.loads(one)["seed"]
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
        return info.value.code, [line.split(": ")[0].strip() for line in out.out.splitlines()[1:]], out.err

    code, keys, _ = dry("--only", "leaderboard/confirm/graph/MUTAG/*", "--only", "leaderboard/image/ntxent/*")
    assert code == 0 and len(keys) == 20 + 4 and all(k.startswith(("leaderboard/confirm/graph/MUTAG/", "leaderboard/image/ntxent/"))
                                                     for k in keys)
    halves = [dry("--only", "leaderboard/confirm/*", "--shard", f"{i}/2")[1] for i in (1, 2)]
    assert sorted(halves[0] + halves[1]) == sorted(dry("--only", "leaderboard/confirm/*")[1]) and not set(halves[0]) & set(halves[1])
    code, keys, err = dry("--only", "nothing/*")
    assert code == 2 and not keys and "no cell of leaderboard matches --only nothing/*" in err


def _graph_record(method, seed, accuracy, convention="paper", beta=0.0):
    config = dict(dataset="MUTAG", method=method, convention=convention, tau_plus=0.5 if method != "infograph" else 0.0,
                  beta=beta, repeat=seed, seed=seed, profile="quick", epochs=10, batch_size=128, hidden=32, layers=3,
                  lr=0.001)
    return {"pipeline": "graph", "config": config, "seed": seed, "wall_time_s": 2.0,
            "metrics": {"accuracy": accuracy, "seconds_per_epoch": 0.5}}


def test_graph_table_renders_paired_deltas_exactly():
    records = [_graph_record("infograph", s, a) for s, a in ((0, 86.0), (1, 88.0), (2, 87.0))]
    records += [_graph_record("hard", s, a, beta=1.0) for s, a in ((0, 87.0), (1, 89.2), (2, 88.1))]  # Δ 1, 1.2, 1.1: t = 19
    records += [_graph_record("hard", s, a, beta=2.0) for s, a in ((0, 89.0), (1, 87.0), (2, 88.0))]  # Δ 3, -1, 1: t = 0.9
    assert format_table(summarize(records), INFOGRAPH).splitlines()[2:] == [
        "| quick | MUTAG | infograph | 87.00 ± 1.00 | 3 |  | 0.500 | 2.0 | 89.01 ± 1.13 |",
        "| quick | MUTAG | hard b=1 [paper] | **88.10 ± 1.10** | 3 | +1.10 ± 0.06* | 0.500 | 2.0 | 89.01 ± 1.13 |",
        "| quick | MUTAG | hard b=2 [paper] | 88.00 ± 1.00 | 3 | +1.00 ± 1.15 | 0.500 | 2.0 | 89.01 ± 1.13 |",
    ]


def test_unknown_profile_is_rejected():
    with pytest.raises(ValueError, match="profile"):
        expand("graph", "huge")


def test_sentence_losses_come_from_records_when_they_carry_them():
    from benchmarks.tables import _sentence_losses

    old = {"config": {"profile": "quick", "method": "hard"}}
    with_values = {"config": {"profile": "quick", "method": "hard", "tau_plus": 0.2, "beta": 3.0}}
    registry = {"config": {"profile": "quick", "method": "ring", "objective": {"name": "hard", "params": {"beta": 2}}}}
    other = {"config": {"profile": "paper", "method": "plain", "tau_plus": 0.5, "beta": 0.0}}
    defaults = {"plain": "tau_plus=0 beta=0", "debiased": "tau_plus=0.1 beta=0", "hard": "tau_plus=0.1 beta=1"}
    assert _sentence_losses([old], "quick") == defaults
    assert _sentence_losses([old, with_values, registry, other], "quick") == {
        **defaults, "hard": "tau_plus=0.2 beta=3", "ring": "tau_plus=0.1 beta=2"}


def test_image_time_rows_are_per_machine_and_thread_count():
    """Timings from a 1-thread run on one CPU must not be averaged with a 2-thread run on another."""
    from benchmarks.tables import _image_speed_lines

    def record(seed, method, cpu, threads, wall, pretrain=None):
        metrics = {"knn_top1": 40.0, "linear_top1": 42.0}
        if pretrain is not None:
            metrics |= {"pretrain_s": pretrain, "images_per_s": 10_000 / pretrain}
        return {"pipeline": "image", "seed": seed, "wall_time_s": wall, "metrics": metrics,
                "config": {"profile": "quick", "method": method},
                "hardware": {"cpu": cpu, "cpu_count": 2, "torch_threads": threads}}

    records = [record(0, "random-init", "A", 1, 50.0), record(0, "simclr", "A", 1, 1050.0, 1000.0),
               record(1, "random-init", "A", 1, 60.0), record(1, "simclr", "A", 1, 1250.0, 1200.0),
               record(0, "random-init", "B", 2, 10.0), record(0, "simclr", "B", 2, 210.0, 200.0)]
    assert _image_speed_lines(records)[2:] == [
        "| quick | A (2 cores) | 1 | pretrain simclr | 2 | 1100 ± 141 | 9 ± 1 |",
        "| quick | A (2 cores) | 1 | whole run | 2 | 1205 ± 148 | |",
        "| quick | B (2 cores) | 2 | pretrain simclr | 1 | 200 | 50 |",
        "| quick | B (2 cores) | 2 | whole run | 1 | 220 | |",
    ]


def test_epoch_speed_table_keeps_the_newest_record_of_each_machine_and_setting(tmp_path):
    from benchmarks.tables import graph_speed_table

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
    from benchmarks.tables import loss_speed_table

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
    written = sorted(p.name for p in out.iterdir() if p.suffix in (".md", ".csv", ".tex"))
    assert written == sorted(p.name for p in TABLES.iterdir() if p.suffix in (".md", ".csv", ".tex"))
    for name in written:
        assert (out / name).read_text() == (TABLES / name).read_text(), name
    assert (tmp_path / "README.md").read_text() == readme.read_text(), "README.md's leaderboard section is stale"
