"""What ``python -m sentence`` does once its arguments are parsed: train, evaluate, build and append the run records.

Every function takes its settings as plain parameters (``sentence.__main__`` turns flags into them), so the
harness and the tests call the same code the command line does. Heavy modules (torch, sklearn,
sentence-transformers) are imported inside the functions that need them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

from common.errors import UserError
from common.objectives import Objective, from_dict
from sentence.config import DEFAULT_OBJECTIVES, SentenceConfig
from sentence.identity import FINETUNE_RUNTIME, QUICK_THOUGHT_RUNTIME, identity, row_id

DEFAULT_RECORDS = Path("runs/sentence/records.jsonl")
Encoder = Callable[[list[str]], Any]


def record_key(config: dict[str, Any]) -> Hashable:
    """The identity (``sentence.identity.identity``) of the run a record's config describes, hashable: a finished
    record with this key is not run again."""
    return json.dumps(identity(config), sort_keys=True)


def planned_keys(argv: list[str]) -> list[Hashable] | None:
    """The :func:`record_key` of every row ``python -m sentence ARGV`` would record, or None unless ARGV is the
    ``run`` command: a harness cell whose keys are all recorded needs no process."""
    from sentence.__main__ import build_parser, objectives_of, settings_of

    args = build_parser().parse_args(argv)
    if args.command != "run":
        return None
    rows = planned_rows(settings_of(args), objectives_of(args, DEFAULT_OBJECTIVES), args.tasks,
                        random=not args.no_random, minilm=not args.no_minilm, eval_at=args.eval_at)
    return [record_key(row) for row in rows]


def row_config(row: str, config: SentenceConfig, tasks: Sequence[str], objective: Objective | None = None,
               eval_at: Sequence[int] = ()) -> dict[str, Any]:
    """A row's record config: what ran (row, objective with every parameter, every setting) and how it was scored,
    so a record says what it ran without this code."""
    from sentence.config import objective_tag
    from sentence.senteval import EVALUATOR

    found: dict[str, Any] = {"row": row, "profile": config.profile, "tasks": list(tasks), "evaluator": EVALUATOR,
                             "settings": config.to_dict()}
    if objective is not None:
        found["objective"] = objective.to_dict()
        if row.startswith("qt-"):
            found["method"] = objective_tag(objective)
    if eval_at:
        found["eval_at"] = sorted(set(eval_at))
    return found


def planned_rows(config: SentenceConfig, objectives: Sequence[Objective], tasks: Sequence[str], *, random: bool,
                 minilm: bool, eval_at: Sequence[int]) -> list[dict[str, Any]]:
    """The record configs of ``run``: one quick-thought row per objective (scored after each ``eval_at`` step
    too), then the random encoder and the shipped MiniLM."""
    check_eval_at(eval_at, config.train.steps)
    rows = [row_config(row_id("qt", o), config, tasks, o, eval_at) for o in objectives]
    return rows + [row_config(name, config, tasks) for name, wanted in (("random", random), ("minilm", minilm)) if wanted]


def check_eval_at(eval_at: Sequence[int], steps: int) -> None:
    """``--eval-at`` steps a run of ``steps`` optimiser steps reaches."""
    if any(not 1 <= step <= steps for step in eval_at):
        raise UserError(f"--eval-at steps must lie in [1, {steps}] (the run's --steps), got {','.join(map(str, eval_at))}")


def checkpoint_path(out_dir: Path | None, config: SentenceConfig, row: str, eval_at: Sequence[int] = ()) -> Path:
    """A row's checkpoint, ``runs/sentence/PROFILE/ROW-seedSEED-DIGEST.pt`` unless another folder is given.

    The digest is of what a resume must share (the row's identity without its runtime settings), so the runs of a
    temperature or batch sweep each keep their own file; ``eval_at`` steps too, as their snapshots lie beside it.
    """
    from common.resume import settings_digest

    runtime = QUICK_THOUGHT_RUNTIME if row.startswith("qt-") else FINETUNE_RUNTIME
    settings = identity({"row": row, "settings": config.to_dict(), "eval_at": list(eval_at)})
    return (out_dir or Path("runs/sentence") / config.profile) / f"{row}-seed{config.seed}-{settings_digest(settings, runtime)}.pt"


def set_threads(threads: int) -> None:
    """Torch CPU threads (0: torch's choice)."""
    import torch

    if threads:
        torch.set_num_threads(threads)


def check_inputs(*, records: Path | None, out: Path | None, out_dir: Path | None, data_dir: Path | None,
                 encoder: str | None, books: bool, task_dir: Path | None, tasks: Sequence[str] | None) -> None:
    """Every output writable with free space and every input present, before torch is imported or anything trained."""
    from common.io import check_output_dir, check_output_file
    from common.paths import cache_dir
    from common.records import check_records_file

    if records is not None:
        check_records_file(records, "--records")
    if out is not None:
        check_output_file(out, "--out", example="checkpoint.pt")
    if out_dir is not None:
        check_output_dir(out_dir, "--out-dir")
    check_output_dir(cache_dir(), "HARDNEG_CACHE")
    if data_dir is not None and not data_dir.is_dir():
        raise UserError(f"--data-dir {data_dir} is not a folder")
    if encoder not in (None, "minilm", "random") and not Path(encoder).is_file():
        raise UserError(f"--encoder must be minilm, random or an existing checkpoint file; {encoder} does not exist")
    if books:
        from sentence.corpus import find_books

        find_books(data_dir)
    if task_dir is not None:
        from sentence.senteval import load_task_dir

        load_task_dir(task_dir)  # a malformed folder fails before any model is loaded
    elif tasks is not None:
        from sentence.senteval import check_task_files

        check_task_files(tasks, data_dir)


def _recorded(records: Path | None, row: dict[str, Any]) -> dict[str, Any] | None:
    """A finished record of ``row`` in ``records`` (read again for every row: another process may have added it)."""
    from common.resume import recorded
    from sentence.report import RECORD_NEEDS

    return recorded(records, "sentence", record_key, RECORD_NEEDS["sentence"]).get(record_key(row))


def _skip(records: Path | None, row: dict[str, Any]) -> dict[str, Any] | None:
    from sentence.report import row_label

    done = _recorded(records, row)
    if done:
        print(f"{row_label(row)}, seed {row['settings']['seed']}: already recorded in {records}, skipping", flush=True)
    return done


def score(encoder: Encoder, config: SentenceConfig, tasks: Sequence[str], task_dir: Path | None,
          data_dir: Path | None, jobs: int | None) -> tuple[dict[str, float], dict[str, float]]:
    """Scores and timings of ``encoder`` on the transfer tasks, or on the task folder when one is given."""
    from sentence.senteval import default_jobs, evaluate, evaluate_task, load_task_dir

    if task_dir is not None:
        return evaluate_task(encoder, load_task_dir(task_dir), config.eval, jobs or default_jobs())
    timings: dict[str, float] = {}
    return evaluate(encoder, tuple(tasks), config.eval, root=data_dir, n_jobs=jobs, timings=timings), timings


def evaluate_row(row: dict[str, Any], encoder: Encoder, config: SentenceConfig, *, task_dir: Path | None,
                 data_dir: Path | None, jobs: int | None, records: Path | None, metrics: dict[str, Any],
                 final_step: int | None = None) -> dict[str, Any]:
    """Score one encoder, build its run record from ``row`` (its config) and ``metrics``, append it to ``records``.

    ``final_step``: with ``--eval-at``, the step this score joins ``metrics["avg_at"]`` under.
    """
    from common.records import append_record, make_record
    from sentence.report import RECORD_NEEDS, average, row_label

    start = time.perf_counter()
    scores, timings = score(encoder, config, row["tasks"], task_dir, data_dir, jobs)
    eval_time = time.perf_counter() - start
    metrics = {**scores, **metrics, "eval_time_s": round(eval_time, 1), **{k: round(v, 1) for k, v in timings.items()}}
    if final_step is not None:
        metrics["avg_at"] = {**metrics["avg_at"], str(final_step): average(scores, tuple(row["tasks"]))}
    record = make_record(pipeline="sentence", config=row, metrics=metrics, seed=config.seed,
                         wall_time_s=eval_time + metrics.get("train_time_s", 0.0) + metrics.get("eval_at_time_s", 0.0))
    if records and not append_record(records, record, key=record_key, needs=RECORD_NEEDS["sentence"]):
        print(f"{row_label(row)}, seed {config.seed}: another run recorded it first, kept theirs", flush=True)
    print(json.dumps({"row": row["row"], **{k: round(v, 4) for k, v in metrics.items() if isinstance(v, float | int)}}),
          flush=True)
    return record


def train_metrics(state: dict[str, Any]) -> dict[str, Any]:
    """What a quick-thought checkpoint adds to its row's metrics: training time and steps, the last validation."""
    last = state["history"][-1] if state["history"] else {}
    return {"train_time_s": round(state.get("wall_time_s", 0.0), 1), "train_steps": state["step"],
            **{k: last[k] for k in ("val_neighbour_acc", "val_neighbour_chance", "loss") if k in last}}


def random_encoder(corpus, config: SentenceConfig) -> tuple[Encoder, dict[str, float]]:
    """An untrained quick-thought model (the baseline any learning must beat) and its neighbour accuracy."""
    import torch

    from sentence.encoders import QuickThoughtEncoder
    from sentence.train import neighbour_accuracy, new_model

    torch.manual_seed(config.seed)
    model = new_model(corpus, config)
    return QuickThoughtEncoder(model, corpus.tokenizer_json), neighbour_accuracy(model, corpus, config)


def _snapshot_encoder(path: Path, step: int, config: SentenceConfig, objective: Objective) -> Encoder:
    """The encoder after ``step`` of the run at ``path``, from the snapshot its training wrote."""
    from common.resume import changed_settings
    from sentence.encoders import QuickThoughtEncoder
    from sentence.train import checkpoint_identity, load_trained, snapshot_path

    snapshot = snapshot_path(path, step)
    if not snapshot.exists():
        raise UserError(f"{path} was trained past step {step} without a snapshot there ({snapshot}); use another "
                        "--out-dir, or delete it to train again with --eval-at")
    model, state = load_trained(snapshot)
    changed = changed_settings(identity(state["config"]), checkpoint_identity(config, objective), QUICK_THOUGHT_RUNTIME)
    if changed or state["step"] != step:
        raise UserError(f"{snapshot} is of another run ({', '.join(changed) or 'step'} differ); delete it and {path}")
    return QuickThoughtEncoder(model, state["tokenizer_json"])


def _quick_thought(row: dict[str, Any], config: SentenceConfig, corpus, path: Path, *, task_dir: Path | None,
                   data_dir: Path | None, jobs: int | None, progress: bool) -> tuple[Encoder, dict[str, Any]]:
    """Train (or resume) a row's encoder; with ``eval_at``, score the snapshots of the earlier steps."""
    from sentence.encoders import QuickThoughtEncoder
    from sentence.report import average
    from sentence.train import load_trained, train

    objective = from_dict(row["objective"])
    earlier = tuple(step for step in row.get("eval_at", ()) if step < config.train.steps)
    train(config, objective, corpus, path, progress=progress, snapshots=earlier)
    model, state = load_trained(path)
    metrics = train_metrics(state)
    if "eval_at" in row:
        start = time.perf_counter()
        metrics["avg_at"] = {str(step): average(score(_snapshot_encoder(path, step, config, objective), config,
                                                      row["tasks"], task_dir, data_dir, jobs)[0], tuple(row["tasks"]))
                             for step in earlier}
        metrics["eval_at_time_s"] = round(time.perf_counter() - start, 1)
    return QuickThoughtEncoder(model, state["tokenizer_json"]), metrics


def run(config: SentenceConfig, objectives: Sequence[Objective], tasks: Sequence[str], *, random: bool, minilm: bool,
        eval_at: Sequence[int], records: Path | None, out_dir: Path | None, data_dir: Path | None, jobs: int | None,
        progress: bool) -> list[dict[str, Any]]:
    """``python -m sentence run``: train and score every row not recorded yet, then print the table of them all."""
    from sentence.corpus import load_corpus
    from sentence.encoders import SentenceTransformerEncoder, load_minilm
    from sentence.report import markdown_table, rows

    planned = planned_rows(config, objectives, tasks, random=random, minilm=minilm, eval_at=eval_at)
    corpus = load_corpus(config.corpus, data_dir)
    found, start = [], time.perf_counter()
    where = {"task_dir": None, "data_dir": data_dir, "jobs": jobs}
    for row in planned:
        done = _skip(records, row)
        if done:
            found.append(done)
        elif row["row"] == "random":
            encoder, metrics = random_encoder(corpus, config)
            found.append(evaluate_row(row, encoder, config, records=records, metrics=metrics, **where))
        elif row["row"] == "minilm":
            found.append(evaluate_row(row, SentenceTransformerEncoder(load_minilm()), config, records=records,
                                      metrics={}, **where))
        else:
            path = checkpoint_path(out_dir, config, row["row"], row.get("eval_at", ()))
            encoder, metrics = _quick_thought(row, config, corpus, path, progress=progress, **where)
            found.append(evaluate_row({**row, "checkpoint": str(path)}, encoder, config, records=records,
                                      metrics=metrics, final_step=config.train.steps if "eval_at" in row else None,
                                      **where))
    print(f"\nprofile {config.profile}, {time.perf_counter() - start:.0f} s in all\n")
    print(markdown_table(rows(found)))
    return found


def _from_checkpoint(path: Path, config: SentenceConfig, tasks: Sequence[str]) -> tuple[Encoder, dict[str, Any], dict[str, Any]]:
    """(encoder, record config, metrics) of a checkpoint written by ``train`` or ``st-finetune``."""
    from common.checkpoint import load_checkpoint
    from sentence.encoders import QuickThoughtEncoder, SentenceTransformerEncoder

    state = load_checkpoint(path, required=("kind",))
    if state["kind"] == "quick-thought":
        from sentence.train import load_trained

        model, state = load_trained(path)
        objective = from_dict(state["objective"])
        return (QuickThoughtEncoder(model, state["tokenizer_json"]),
                {**row_config(row_id("qt", objective), config, tasks, objective), "checkpoint": str(path)},
                train_metrics(state))
    if state["kind"] == "minilm-finetune":
        from sentence.finetune import curve_metrics, load_finetuned, objective_of

        state = load_checkpoint(path, required=("kind", "config", "curve", "model"))
        objective = objective_of(state)
        return (SentenceTransformerEncoder(load_finetuned(state)),
                {**row_config(row_id("minilm", objective), config, tasks, objective), "checkpoint": str(path)},
                {"train_steps": state["step"], **curve_metrics(state)})
    raise UserError(f"checkpoint {path} is of unknown kind {state['kind']!r}")


def evaluate_encoder(encoder: str, config: SentenceConfig, tasks: Sequence[str], *, task_dir: Path | None,
                     data_dir: Path | None, jobs: int | None, records: Path | None) -> None:
    """``python -m sentence eval``: one encoder (minilm, random or a checkpoint) on the tasks or a task folder."""
    where = {"task_dir": task_dir, "data_dir": data_dir, "jobs": jobs, "records": records}
    shown = [f"dir:{task_dir}"] if task_dir is not None else tasks
    if encoder in ("minilm", "random"):
        row = row_config(encoder, config, shown)
        if task_dir is None and _skip(records, row):
            return
        if encoder == "minilm":
            from sentence.encoders import SentenceTransformerEncoder, load_minilm

            evaluate_row(row, SentenceTransformerEncoder(load_minilm()), config, metrics={}, **where)
        else:
            from sentence.corpus import load_corpus

            model, metrics = random_encoder(load_corpus(config.corpus, data_dir), config)
            evaluate_row(row, model, config, metrics=metrics, **where)
        return
    model, row, metrics = _from_checkpoint(Path(encoder), config, shown)
    evaluate_row(row, model, config, metrics=metrics, **where)


def train_encoder(config: SentenceConfig, objective: Objective, *, out: Path | None, data_dir: Path | None,
                  progress: bool) -> None:
    """``python -m sentence train``: one quick-thought encoder, trained or resumed; prints its checkpoint."""
    from sentence.corpus import load_corpus
    from sentence.train import train

    corpus = load_corpus(config.corpus, data_dir)
    path = out or checkpoint_path(None, config, row_id("qt", objective))
    state = train(config, objective, corpus, path, progress=progress)
    print(json.dumps({"checkpoint": str(path), **train_metrics(state)}))


def finetune_minilm(config: SentenceConfig, objective: Objective, tasks: Sequence[str], *, out: Path | None,
                    records: Path | None, data_dir: Path | None, jobs: int | None, evaluate: bool,
                    progress: bool) -> None:
    """``python -m sentence st-finetune``: fine-tune MiniLM with ``objective`` (resumed), then score and record it."""
    from sentence.corpus import load_corpus
    from sentence.encoders import SentenceTransformerEncoder
    from sentence.finetune import curve_metrics, finetune, load_finetuned

    row = row_config(row_id("minilm", objective), config, tasks, objective)
    if _skip(records, row):
        return
    path = out or checkpoint_path(None, config, row["row"])
    state = finetune(config, objective, load_corpus(config.corpus, data_dir), path, progress=progress)
    metrics = {"train_time_s": round(state["wall_time_s"], 1), "train_steps": state["step"], **curve_metrics(state)}
    if not evaluate:
        print(json.dumps({"checkpoint": str(path), **{k: v for k, v in metrics.items() if k != "loss_curve"}}))
        return
    evaluate_row({**row, "checkpoint": str(path)}, SentenceTransformerEncoder(load_finetuned(state)), config,
                 task_dir=None, data_dir=data_dir, jobs=jobs, records=records, metrics=metrics)


def prepare(config: SentenceConfig, data_dir: Path | None) -> None:
    """``python -m sentence prepare``: build (or load) the tokenised corpus and print its size."""
    from sentence.corpus import load_corpus

    start = time.perf_counter()
    corpus = load_corpus(config.corpus, data_dir)
    val = sum(b - a for a, b in corpus.split_ranges(val=True))
    print(f"{len(corpus.book_names)} books ({int(corpus.is_val.sum())} held out), {corpus.num_sentences} sentences "
          f"({val} validation), {len(corpus.tokens)} tokens; ready in {time.perf_counter() - start:.1f} s")


def table(records: Path | None) -> None:
    """``python -m sentence table``: the markdown table of the records."""
    from common.records import read_records
    from sentence.report import RECORD_NEEDS, markdown_table, rows

    if not records or not Path(records).exists():
        raise UserError(f"no run records at {records}; run `python -m sentence run` first")
    print(markdown_table(rows(read_records(records, RECORD_NEEDS))))
