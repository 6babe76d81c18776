"""``python -m sentence``: quick-thought training, transfer evaluation, MiniLM fine-tuning, full runs.

Only argument parsing lives here; heavy modules (torch, sklearn, sentence-transformers) are
imported inside the subcommands so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.cli import Parser, at_least, objectives_arg, run_main, seed_arg
from common.errors import UserError
from common.io import check_output_dir, check_output_file
from common.objectives import Objective, from_dict, parse_objective
from common.settings import add_config_flags, config_from_args
from sentence.config import (
    DEFAULT_OBJECTIVES,
    FINETUNE_OBJECTIVE,
    PROFILES,
    TASKS,
    FinetuneConfig,
    SentenceConfig,
    TrainConfig,
    get_config,
    objective_tag,
)

DEFAULT_RECORDS = Path("runs/sentence/records.jsonl")
ENCODER_HELP = "minilm (shipped all-MiniLM-L6-v2), random (untrained quick-thought), or PATH of a checkpoint from train/st-finetune"


def _tasks(text: str) -> tuple[str, ...]:
    tasks = tuple(t.strip().upper() for t in text.split(",") if t.strip())
    unknown = [t for t in tasks if t not in TASKS]
    if not tasks or unknown:
        raise argparse.ArgumentTypeError(f"tasks must be a comma-separated subset of {','.join(TASKS)}")
    return tasks


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick",
                        help="settings profile: quick (sized for 2 CPU cores, ~1 h) or paper (Logeswaran & Lee sizes)")
    parser.add_argument("--seed", type=seed_arg, default=None, help="random seed (default: the profile's, 0)")
    parser.add_argument("--threads", type=at_least(0), default=0, help="torch CPU threads (default 0: torch's choice)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder holding books/gutenberg/ and senteval/ (default: DATA_DIR or ../shared/data)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars (for logs)")


def _training(parser: argparse.ArgumentParser) -> None:
    add_config_flags(parser, TrainConfig, {name: p.train for name, p in PROFILES.items()}, "quick-thought training")


def _evaluation(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", type=_tasks, default=TASKS, help=f"comma-separated transfer tasks (default {','.join(TASKS)})")
    parser.add_argument("--inner-kfold", type=at_least(1), default=None,
                        help="inner cross-validation folds that choose the L2 strength (profile default)")
    parser.add_argument("--jobs", type=at_least(1), default=None, help="parallel classifier fits (default: all usable cores)")


def _records(parser: argparse.ArgumentParser, default: Path | None) -> None:
    parser.add_argument("--records", type=Path, default=default,
                        help=f"JSONL file the run records are appended to (default {default or 'none: print only'})")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m sentence", description="Quick-thought training with hard negatives, an offline "
                     "SentEval for any encoder, and MiniLM fine-tuning with a hard-negative sentence-transformers loss.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    p = sub.add_parser("prepare", help="split, tokenise and cache the book corpus; print its size and build time")
    _common(p)

    p = sub.add_parser("train", help="train one quick-thought encoder (resumes from its checkpoint)")
    _common(p)
    _training(p)
    objectives_arg(p, default=("hard",), what="quick-thought loss (one)")
    p.add_argument("--out", type=Path, default=None,
                   help="checkpoint file (default runs/sentence/PROFILE/qt-TAG-seedSEED.pt); an existing one is resumed")

    p = sub.add_parser("eval", help="evaluate any encoder on the transfer tasks or on one task folder")
    _common(p)
    _evaluation(p)
    _records(p, None)
    p.add_argument("--encoder", required=True, help=ENCODER_HELP)
    p.add_argument("--task-dir", type=Path, default=None,
                   help="evaluate on this folder instead of --tasks: SentEval's SST layout, sentiment-train, "
                        "sentiment-dev and sentiment-test with one 'sentence<TAB>label' per line (UTF-8, labels any "
                        "strings); C is chosen on dev, accuracy is on test")

    p = sub.add_parser("st-finetune", help="fine-tune all-MiniLM-L6-v2 on (sentence, next sentence) pairs, then eval")
    _common(p)
    _evaluation(p)
    _records(p, DEFAULT_RECORDS)
    objectives_arg(p, default=(FINETUNE_OBJECTIVE,), what="fine-tune loss (one); ntxent (alias mnrl) and hardness "
                   "run as sentence-transformers' MultipleNegativesRankingLoss (hardness: its in_batch_negatives mode, "
                   "hardness_strength = alpha), every other family through its masked form")
    add_config_flags(p, FinetuneConfig, {name: profile.finetune for name, profile in PROFILES.items()}, "MiniLM fine-tuning")
    p.add_argument("--out", type=Path, default=None,
                   help="checkpoint file (default runs/sentence/PROFILE/minilm-TAG-seedSEED.pt); an existing one "
                        "is resumed when its settings and seed match")
    p.add_argument("--no-eval", action="store_true", help="only fine-tune")

    p = sub.add_parser("run", help="train plain/debiased/hard, evaluate them, a random encoder and MiniLM; record and print")
    _common(p)
    _training(p)
    _evaluation(p)
    _records(p, DEFAULT_RECORDS)
    objectives_arg(p, default=DEFAULT_OBJECTIVES, what="quick-thought losses")
    p.add_argument("--out-dir", type=Path, default=None, help="checkpoint folder (default runs/sentence/PROFILE)")
    p.add_argument("--no-random", action="store_true", help="skip the random-encoder row")
    p.add_argument("--no-minilm", action="store_true", help="skip the shipped-MiniLM row")

    p = sub.add_parser("table", help="print the markdown results table from run records")
    _records(p, DEFAULT_RECORDS)
    return parser


def _setup(args: argparse.Namespace) -> SentenceConfig:
    """Config with the command-line overrides (checked before torch is imported), then threads."""
    import dataclasses

    config = get_config(args.profile, eval={"inner_kfold": getattr(args, "inner_kfold", None)})
    if args.command in ("train", "run"):
        config = dataclasses.replace(config, train=config_from_args(args, config.train))
    if args.command == "st-finetune":
        config = dataclasses.replace(config, finetune=config_from_args(args, config.finetune))
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    return config if args.seed is None else dataclasses.replace(config, seed=args.seed)


def _run_dir(args: argparse.Namespace, config: SentenceConfig) -> Path:
    return getattr(args, "out_dir", None) or Path("runs/sentence") / config.profile


def _evaluate_row(row: str, encoder: Callable[[list[str]], Any], config: SentenceConfig, args: argparse.Namespace, extra_config: dict[str, Any],
                  extra_metrics: dict[str, Any]) -> dict[str, Any]:
    """Evaluate one encoder, build its run record, append it when ``--records`` is set."""
    from common.records import append_record, make_record
    from sentence.report import RECORD_NEEDS
    from sentence.senteval import EVALUATOR, evaluate

    start = time.perf_counter()
    timings: dict[str, float] = {}
    if getattr(args, "task_dir", None):
        from sentence.senteval import default_jobs, evaluate_task, load_task_dir

        task = load_task_dir(args.task_dir)
        scores, timings = evaluate_task(encoder, task, config.eval, args.jobs or default_jobs())
        tasks = [f"dir:{args.task_dir}"]
    else:
        scores = evaluate(encoder, args.tasks, config.eval, root=args.data_dir, n_jobs=args.jobs, timings=timings)
        tasks = list(args.tasks)
    eval_time = time.perf_counter() - start
    metrics = {**scores, **extra_metrics, "eval_time_s": round(eval_time, 1),
               **{k: round(v, 1) for k, v in timings.items()}}
    record_config = {"row": row, "profile": config.profile, "tasks": tasks, "evaluator": EVALUATOR, **extra_config,
                     "settings": config.to_dict()}
    record = make_record(pipeline="sentence", config=record_config, metrics=metrics, seed=config.seed,
                         wall_time_s=eval_time + extra_metrics.get("train_time_s", 0.0))
    if args.records and not append_record(args.records, record, key=_record_key, needs=RECORD_NEEDS["sentence"]):
        print(f"{row} seed {config.seed}: another run recorded it first, kept theirs", flush=True)
    print(json.dumps({"row": row, **{k: round(v, 4) for k, v in metrics.items() if isinstance(v, float | int)}}), flush=True)
    return record


def _train_metrics(state: dict[str, Any]) -> dict[str, Any]:
    last = state["history"][-1] if state["history"] else {}
    return {"train_time_s": round(state.get("wall_time_s", 0.0), 1), "train_steps": state["step"],
            **{k: last[k] for k in ("val_neighbour_acc", "val_neighbour_chance", "loss") if k in last}}


def _random_encoder(corpus, config: SentenceConfig):
    """An untrained quick-thought model (the baseline any learning must beat) and its neighbour accuracy."""
    import torch

    from sentence.encoders import QuickThoughtEncoder
    from sentence.train import neighbour_accuracy, new_model

    torch.manual_seed(config.seed)
    model = new_model(corpus, config)
    return QuickThoughtEncoder(model, corpus.tokenizer_json), neighbour_accuracy(model, corpus, config)


def _objectives(args: argparse.Namespace, default: tuple[str, ...]) -> list[Objective]:
    return list(dict.fromkeys(args.objectives or [parse_objective(spec) for spec in default]))


def _method_config(objective: Objective) -> dict[str, Any]:
    """A quick-thought row's objective (name and every parameter), so a record says what it ran without this code."""
    return {"method": objective_tag(objective), "objective": objective.to_dict()}


def _finetune_config(objective: Objective, path: Path) -> dict[str, Any]:
    """A fine-tune's objective (name and every parameter), so a record says what it ran without this code."""
    return {"checkpoint": str(path), "objective": objective.to_dict()}


def _encoder_from_path(path: Path):
    """(encoder, record config, metrics) for a checkpoint written by ``train`` or ``st-finetune``."""
    from common.checkpoint import load_checkpoint
    from sentence.encoders import QuickThoughtEncoder, SentenceTransformerEncoder

    state = load_checkpoint(path, required=("kind",))
    if state["kind"] == "quick-thought":
        from sentence.train import load_trained

        model, state = load_trained(path)
        objective = from_dict(state["objective"])
        return (QuickThoughtEncoder(model, state["tokenizer_json"]), f"qt-{objective_tag(objective)}",
                {"checkpoint": str(path), **_method_config(objective)}, _train_metrics(state))
    if state["kind"] == "minilm-finetune":
        from sentence.finetune import curve_metrics, load_finetuned, objective_of

        state = load_checkpoint(path, required=("kind", "config", "curve", "model"))
        objective = objective_of(state)
        return (SentenceTransformerEncoder(load_finetuned(state)), f"minilm-{objective_tag(objective)}",
                _finetune_config(objective, path), {"train_steps": state["step"], **curve_metrics(state)})
    raise UserError(f"checkpoint {path} is of unknown kind {state['kind']!r}")


def cmd_prepare(args: argparse.Namespace) -> None:
    from sentence.corpus import load_corpus

    config = _setup(args)
    start = time.perf_counter()
    corpus = load_corpus(config.corpus, args.data_dir)
    val = sum(b - a for a, b in corpus.split_ranges(val=True))
    print(f"{len(corpus.book_names)} books ({int(corpus.is_val.sum())} held out), {corpus.num_sentences} sentences "
          f"({val} validation), {len(corpus.tokens)} tokens; ready in {time.perf_counter() - start:.1f} s")


def cmd_train(args: argparse.Namespace) -> None:
    from sentence.corpus import load_corpus
    from sentence.train import train

    config = _setup(args)
    corpus = load_corpus(config.corpus, args.data_dir)
    if args.objectives and len(args.objectives) > 1:
        raise UserError("train takes one --objective; `python -m sentence run` takes several")
    (objective,) = _objectives(args, ("hard",))
    out = args.out or _run_dir(args, config) / f"qt-{objective_tag(objective)}-seed{config.seed}.pt"
    state = train(config, objective, corpus, out, progress=not args.no_progress)
    print(json.dumps({"checkpoint": str(out), **_train_metrics(state)}))


def cmd_eval(args: argparse.Namespace) -> None:
    config = _setup(args)
    if args.encoder in ("minilm", "random") and not args.task_dir and _already_recorded(args, args.encoder, config):
        print(f"{args.encoder} seed {config.seed}: already recorded in {args.records}, skipping", flush=True)
        return
    if args.encoder == "minilm":
        from sentence.encoders import SentenceTransformerEncoder, load_minilm

        _evaluate_row("minilm", SentenceTransformerEncoder(load_minilm()), config, args, {}, {})
    elif args.encoder == "random":
        from sentence.corpus import load_corpus

        corpus = load_corpus(config.corpus, args.data_dir)
        encoder, metrics = _random_encoder(corpus, config)
        _evaluate_row("random", encoder, config, args, {}, metrics)
    else:
        path = Path(args.encoder)
        encoder, row, extra, metrics = _encoder_from_path(path)
        _evaluate_row(row, encoder, config, args, extra, metrics)


def cmd_st_finetune(args: argparse.Namespace) -> None:
    from sentence.corpus import load_corpus
    from sentence.encoders import SentenceTransformerEncoder
    from sentence.finetune import curve_metrics, finetune, load_finetuned

    config = _setup(args)
    if args.objectives and len(args.objectives) > 1:
        raise UserError("st-finetune takes one --objective")
    (objective,) = _objectives(args, (FINETUNE_OBJECTIVE,))
    row = f"minilm-{objective_tag(objective)}"
    if _already_recorded(args, row, config):
        print(f"{row} seed {config.seed}: already recorded in {args.records}, skipping", flush=True)
        return
    corpus = load_corpus(config.corpus, args.data_dir)
    out = args.out or _run_dir(args, config) / f"{row}-seed{config.seed}.pt"
    state = finetune(config, objective, corpus, out, progress=not args.no_progress)
    metrics = {"train_time_s": round(state["wall_time_s"], 1), "train_steps": state["step"], **curve_metrics(state)}
    if args.no_eval:
        print(json.dumps({"checkpoint": str(out), **{k: v for k, v in metrics.items() if k != "loss_curve"}}))
        return
    _evaluate_row(row, SentenceTransformerEncoder(load_finetuned(state)), config, args, _finetune_config(objective, out),
                  metrics)


def _already_recorded(args: argparse.Namespace, row: str, config: SentenceConfig) -> dict[str, Any] | None:
    """A finished record of this row with identical settings, so a re-run skips it."""
    from common.resume import recorded
    from sentence.report import RECORD_NEEDS
    from sentence.senteval import EVALUATOR

    done = recorded(args.records, "sentence", _record_key, RECORD_NEEDS["sentence"])
    return done.get(_record_key({"row": row, "settings": config.to_dict(), "tasks": list(args.tasks), "evaluator": EVALUATOR}))


def _record_key(cfg: dict[str, Any]) -> str:
    from sentence.report import identity

    return identity(cfg)


def cmd_run(args: argparse.Namespace) -> None:
    from sentence.corpus import load_corpus
    from sentence.encoders import QuickThoughtEncoder, SentenceTransformerEncoder, load_minilm
    from sentence.report import markdown_table, rows
    from sentence.train import load_trained, train

    config = _setup(args)
    corpus = load_corpus(config.corpus, args.data_dir)
    records = []
    start = time.perf_counter()
    objectives = {f"qt-{objective_tag(o)}": o for o in _objectives(args, DEFAULT_OBJECTIVES)}
    names = [*objectives] + ([] if args.no_random else ["random"]) + ([] if args.no_minilm else ["minilm"])
    for row in names:
        done = _already_recorded(args, row, config)
        if done:
            print(f"{row}: already recorded in {args.records}, skipping", flush=True)
            records.append(done)
            continue
        if row in objectives:
            path = _run_dir(args, config) / f"{row}-seed{config.seed}.pt"
            train(config, objectives[row], corpus, path, progress=not args.no_progress)
            model, state = load_trained(path)
            records.append(_evaluate_row(row, QuickThoughtEncoder(model, state["tokenizer_json"]), config, args,
                                         {"checkpoint": str(path), **_method_config(objectives[row])},
                                         _train_metrics(state)))
        elif row == "random":
            encoder, metrics = _random_encoder(corpus, config)
            records.append(_evaluate_row(row, encoder, config, args, {}, metrics))
        else:
            records.append(_evaluate_row(row, SentenceTransformerEncoder(load_minilm()), config, args, {}, {}))
    print(f"\nprofile {config.profile}, {time.perf_counter() - start:.0f} s in all\n")
    print(markdown_table(rows(records)))


def cmd_table(args: argparse.Namespace) -> None:
    from common.records import read_records
    from sentence.report import RECORD_NEEDS, markdown_table, rows

    if not args.records or not Path(args.records).exists():
        raise UserError(f"no run records at {args.records}; run `python -m sentence run` first")
    print(markdown_table(rows(read_records(args.records, RECORD_NEEDS))))


def _check_outputs(args: argparse.Namespace) -> None:
    """Records file, its lock, checkpoint and cache writable with free space, before anything loads or trains."""
    from common.paths import cache_dir
    from common.records import check_records_file

    if args.command == "table":
        return
    if getattr(args, "records", None) is not None:
        check_records_file(args.records, "--records")
    if getattr(args, "out", None) is not None:
        check_output_file(args.out, "--out", example="checkpoint.pt")
    if getattr(args, "out_dir", None) is not None:
        check_output_dir(args.out_dir, "--out-dir")
    check_output_dir(cache_dir(), "HARDNEG_CACHE")


COMMANDS = {"prepare": cmd_prepare, "train": cmd_train, "eval": cmd_eval, "st-finetune": cmd_st_finetune,
            "run": cmd_run, "table": cmd_table}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is fetched from a hub at run time
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    _check_outputs(args)
    if getattr(args, "data_dir", None) is not None and not args.data_dir.is_dir():
        raise UserError(f"--data-dir {args.data_dir} is not a folder")
    if getattr(args, "encoder", None) not in (None, "minilm", "random") and not Path(args.encoder).is_file():
        raise UserError(f"--encoder must be minilm, random or an existing checkpoint file; {args.encoder} does not exist")
    if args.command in ("prepare", "train", "st-finetune", "run") or getattr(args, "encoder", None) == "random":
        from sentence.corpus import find_books

        find_books(args.data_dir)  # fail in a second, before torch is imported or anything is trained
    if getattr(args, "task_dir", None) is not None:
        from sentence.senteval import load_task_dir

        load_task_dir(args.task_dir)  # a malformed folder fails before any model is loaded
    elif hasattr(args, "tasks") and not getattr(args, "no_eval", False):
        from sentence.senteval import check_task_files

        check_task_files(args.tasks, args.data_dir)
    COMMANDS[args.command](args)
    return 0


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
