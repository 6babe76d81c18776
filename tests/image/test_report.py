"""The image table counts each run once, labels runs by the registry and shows GPU epoch times with their runtime
options; curve points and the one identity of an image run."""

from __future__ import annotations

import dataclasses

from benchmarks.image_page import image_gpu_lines, image_speed_lines
from common.objectives import from_dict
from image.config import PROFILES, objective_tag
from image.identity import identity
from image.report import curve_scores, rows, scores
from image.run import record_key


def _record(seed: int, linear: float, *, bf16: bool = False, gpu: str | None = None) -> dict:
    config = {"profile": "paper", "dataset_label": "CIFAR-10", "arch_label": "resnet18", "epochs": 2, "method": "simclr",
              "objective": {"name": "ntxent", "params": {}}, "batch_size": 256, "pretrain_images": 50_000, "bf16": bf16,
              "channels_last": bf16, "compile": False, "sync_bn": False}
    metrics = {"knn_top1": linear - 1, "linear_top1": linear, "epoch_s": [30.0, 10.0], "ranks": 1, "peak_memory_mb": 900.0}
    return {"pipeline": "image", "config": config, "metrics": metrics, "seed": seed, "git_commit": "abc" * 5 + "-dirty",
            "command": "torchrun --nnodes 1 --nproc_per_node 1 -m image run" if gpu else "python -m image run",
            "hardware": {"cpu": "x", "cpu_count": 16, "torch_threads": 16, "gpu": gpu}}


def test_a_run_recorded_twice_counts_once_its_latest() -> None:
    # The same run with other runtime options (bf16) is the same seed, not a second one.
    (row,) = rows([_record(0, 40.0), _record(0, 42.0, bf16=True), _record(1, 44.0)])
    assert row.n == 2 and row.linear == [42.0, 44.0]


def test_gpu_epoch_rows_show_options_and_the_steady_rate() -> None:
    lines = image_gpu_lines([_record(0, 40.0), _record(0, 42.0, bf16=True, gpu="NVIDIA H200")])
    (row,) = [line for line in lines if line.startswith("| NVIDIA H200")]
    # epoch 2 took 10 s for 195 full batches of 256 images: 4992 images/s
    assert "| yes | yes | no | no | 1 (torchrun) | 30.0 | 10.0 | 4992 | 900 | 41.00 | 42.00 | abcabcabcabc-dirty |" in row
    assert image_gpu_lines([_record(0, 40.0)]) == []


def _quick(objective: dict | None, seed: int, linear: float, **config: object) -> dict:
    """A quick-profile record as ``python -m image run`` writes it (``objective`` None: the random-init encoder)."""
    settings = {**dataclasses.asdict(PROFILES["quick"]), "profile": "quick", "dataset_label": "CIFAR-10 (JPEG q75)",
                "arch_label": "resnet18 (width 16)", "pretrain_images": 10_000, "test_images": 10_000, "seed": seed}
    if objective is None:
        settings["method"] = "random-init"
    else:
        settings |= {"method": objective_tag(from_dict(objective)), "objective": objective, "anneal_beta": False}
    metrics = {"knn_top1": linear - 1, "linear_top1": linear}
    return {"pipeline": "image", "config": {**settings, **config}, "metrics": metrics, "seed": seed, "protocol": 1,
            "wall_time_s": 10.0, "hardware": {"cpu": "x", "cpu_count": 2, "torch_threads": 1, "gpu": None}}


NTXENT, HARD = {"name": "ntxent", "params": {}}, {"name": "hard", "params": {"beta": 1.0, "tau_plus": 0.1}}


def test_curve_points_one_per_scored_epoch_and_only_at_the_quick_protocol() -> None:
    long = _quick(HARD, 1, 50.0, epochs=32, temperature=0.2)
    long["metrics"]["linear_top1_at"] = {"4": 30.0, "8": 40.0, "16": 45.0, "32": 50.0}
    wide = _quick(NTXENT, 2, 44.0, batch_size=512, lr=2e-3)
    smoke = _quick(NTXENT, 0, 99.0, linear_epochs=2)  # a smoke run records profile quick too
    paper = {**_quick(NTXENT, 0, 98.0), "config": {**_quick(NTXENT, 0, 98.0)["config"], "profile": "paper"}}
    other = {**_quick(NTXENT, 0, 97.0), "pipeline": "graph"}
    points = curve_scores([long, wide, _quick(None, 3, 20.0), smoke, paper, other])
    assert [(p.spec, p.temperature, p.batch, p.length, p.at, p.seed, p.value) for p in points] == [
        ("hard:beta=1,tau_plus=0.1", 0.2, 128, 32, 4, 1, 30.0), ("hard:beta=1,tau_plus=0.1", 0.2, 128, 32, 8, 1, 40.0),
        ("hard:beta=1,tau_plus=0.1", 0.2, 128, 32, 16, 1, 45.0), ("hard:beta=1,tau_plus=0.1", 0.2, 128, 32, 32, 1, 50.0),
        ("ntxent", 0.5, 512, 8, 8, 2, 44.0),  # no map: one point at its length, the profile temperature named
        ("", None, 128, 8, 8, 3, 20.0)]  # the untrained encoder, as the leaderboard's scores name it
    assert {(p.modality, p.dataset, p.protocol) for p in points} == {("image", "CIFAR-10 (JPEG q75)", 1)}


def test_one_identity_eval_at_only_when_given_and_old_records_keep_theirs() -> None:
    new = _quick(NTXENT, 0, 40.0)["config"]
    old = {k: v for k, v in new.items() if k not in ("objective", "anneal_beta")} | {"method": "simclr", "anneal_beta": False}
    assert identity(old) == identity(new)  # a record from before the registry: its objective read from method
    assert identity({**new, "eval_at": []}) == identity(new) == record_key({**new, "threads": 2, "bf16": True})
    assert identity({**new, "dataset_label": "other", "test_images": 1}) == identity(new)  # read from the data
    assert identity({**new, "eval_at": [4, 2]}) == identity({**new, "eval_at": [2, 4]}) != identity(new)
    assert identity({**new, "objective": HARD}) != identity(new)
    annealed = _quick(HARD, 0, 40.0, anneal_beta=True)["config"]  # its folder tag was hard-anneal, now hard-annealed
    assert identity({**annealed, "method": "hard-anneal"}) == identity(annealed) != identity({**annealed, "anneal_beta": False})


def test_the_untrained_encoder_is_one_run_per_seed_whatever_pretraining_its_command_would_do() -> None:
    from image.run import planned_keys

    base = ["run", "--profile", "quick", "--seed", "1", "--objective", "ntxent"]
    keys = {t: planned_keys([*base, "--temperature", t]) for t in ("0.2", "0.5")}
    assert keys["0.2"][0] == keys["0.5"][0]  # random-init: scored once, not again at every temperature of a sweep
    assert keys["0.2"][1] != keys["0.5"][1]  # the trained runs differ
    longer = planned_keys([*base, "--epochs", "16", "--batch-size", "64", "--lr", "0.0005"])
    assert longer[0] == keys["0.5"][0] and planned_keys([*base, "--seed", "2"])[0] != keys["0.5"][0]
    untrained = {**_quick(None, 0, 20.0)["config"], "temperature": 0.1}
    assert [row.n for row in rows([_quick(None, 0, 20.0), {**_quick(None, 0, 20.0), "config": untrained}])] == [1]


def test_rows_label_by_the_registry_pair_against_ntxent_and_count_a_scored_run_once() -> None:
    scored = _quick(NTXENT, 1, 44.0, eval_at=[4])
    records = [_quick(NTXENT, 0, 40.0), _quick(NTXENT, 1, 44.0), scored,
               _quick({"name": "hard", "params": {"beta": 0.5, "tau_plus": 0.1}}, 0, 42.0),
               _quick({"name": "hard", "params": {"beta": 0.5, "tau_plus": 0.1}}, 1, 47.0),
               _quick(HARD, 0, 41.0, anneal_beta=True), _quick(None, 0, 20.0)]
    table = {row.method: row for row in rows(records)}
    assert list(table) == ["ntxent", "hard beta=0.5", "hard annealed", "random-init"]
    assert table["ntxent"].n == 2  # the run scored along the way is seed 1 again, not a third seed
    assert table["hard beta=0.5"].delta_linear.mean == 2.5 and table["ntxent"].delta_linear is None
    (score,) = [s for s in scores(records) if s.spec == "hard:beta=1,tau_plus=0.1"]
    assert score.label == "hard annealed"


def test_image_time_rows_are_per_machine_and_thread_count_and_named_by_the_registry() -> None:
    """Timings from a 1-thread run on one CPU must not be averaged with a 2-thread run on another."""

    def record(seed: int, method: str, cpu: str, threads: int, wall: float, pretrain: float | None = None) -> dict:
        metrics = {"knn_top1": 40.0, "linear_top1": 42.0}
        if pretrain is not None:
            metrics |= {"pretrain_s": pretrain, "images_per_s": 10_000 / pretrain}
        return {"pipeline": "image", "seed": seed, "wall_time_s": wall, "metrics": metrics,
                "config": {"profile": "quick", "method": method},
                "hardware": {"cpu": cpu, "cpu_count": 2, "torch_threads": threads}}

    records = [record(0, "random-init", "A", 1, 50.0), record(0, "simclr", "A", 1, 1050.0, 1000.0),
               record(1, "random-init", "A", 1, 60.0), record(1, "simclr", "A", 1, 1250.0, 1200.0),
               record(0, "random-init", "B", 2, 10.0), record(0, "simclr", "B", 2, 210.0, 200.0)]
    assert image_speed_lines(records)[2:] == [
        "| quick | A (2 cores) | 1 | pretrain ntxent | 2 | 1100 ± 141 | 9 ± 1 |",
        "| quick | A (2 cores) | 1 | whole run | 2 | 1205 ± 148 | |",
        "| quick | B (2 cores) | 2 | pretrain ntxent | 1 | 200 | 50 |",
        "| quick | B (2 cores) | 2 | whole run | 1 | 220 | |",
    ]


def test_runs_off_the_profile_are_a_setting_of_their_own_never_pooled_as_seeds() -> None:
    """A batch curve's runs (batch 256, its learning rate scaled) are another experiment, not more seeds of the
    profile's; the untrained encoder reads no pretraining setting and stays in the profile's row."""
    records = [_quick(NTXENT, s, 40.0 + s) for s in (0, 1)] + [_quick(HARD, s, 41.0 + s) for s in (0, 1)]
    records += [_quick(NTXENT, s, 30.0, batch_size=256, lr=2e-3) for s in (0, 1)]
    records += [_quick(None, 0, 20.0, batch_size=256, lr=2e-3)]
    got = {(r.profile, r.method): (r.n, r.delta_linear and round(r.delta_linear.mean, 9)) for r in rows(records)}
    assert got == {("quick", "ntxent"): (2, None), ("quick", "hard"): (2, 1.0), ("quick", "random-init"): (1, None),
                   ("quick, batch_size=256, lr=0.002", "ntxent"): (2, None)}
