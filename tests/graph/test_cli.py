"""python -m graph: bad input, resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from tests.graph.conftest import REPO


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
            "--epochs", "2", "--records", str(out))
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
    text = out.read_text().splitlines()
    assert len(text) == 7 and text[2] == lines[2][:30]  # the partial line is kept as it was, never deleted
    records = [json.loads(line) for line in text[:2] + text[3:]]
    keys = [(json.dumps(r["config"]["objective"]), r["seed"]) for r in records]
    assert len(keys) == 6 and len(set(keys)) == 6
    assert "| quick, 2 epochs | TOY | jsd beta=1,tau_plus=0.5 |" in stdout  # --epochs overrides the profile: its own rows
    _, stdout, _ = run_cli(*args, root=toy_root, monkeypatch=monkeypatch, capsys=capsys)
    assert "6 already recorded" in stdout and len(out.read_text().splitlines()) == 7


def test_out_is_a_deprecated_name_of_records_with_one_warning(tmp_path, capsys):
    from graph.__main__ import parse_args

    args = parse_args(["--out", str(tmp_path / "old.jsonl")])
    assert args.records == tmp_path / "old.jsonl" and not hasattr(args, "out")
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "--records" in err
    assert parse_args([]).records.name == "records.jsonl" and capsys.readouterr().err == ""


def test_threads_default_follows_omp_num_threads(toy_root, tmp_path):
    """A one-thread background queue (OMP_NUM_THREADS=1) must not start two threads per run: beside another run
    on a 2-core machine that oversubscribes the cores (a MUTAG repeat took 160 s on two threads, 6 s on one)."""
    out = tmp_path / "records.jsonl"
    env = {**os.environ, "HARDNEG_CACHE": str(tmp_path / "cache"), "HARDNEG_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "graph", "--dataset", "TOY", "--data-dir", str(toy_root),
                             "--objective", "infograph", "--repeats", "1", "--epochs", "1",
                             "--records", str(out), "--no-progress"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert {json.loads(line)["hardware"]["torch_threads"] for line in out.read_text().splitlines()} == {1}
