"""Seconds per encoder of the six transfer tasks, before and after the evaluator's speed-up, same embeddings.

Before: what ``sentence/senteval.py`` ran until issue 21 (every task encoded on every call;
``StandardScaler`` + ``LogisticRegressionCV`` with lbfgs at ``max_iter`` 200 inside
``cross_val_score``, outer folds in parallel). After: embeddings cached by content, one
warm-started lbfgs path per C grid, folds in parallel. Both score the same embeddings on the same
folds, so the accuracies must agree (within 0.1 points is the bar). Encoders: the untrained
quick-thought model and the shipped MiniLM. Appends one record to
``tables/records/senteval_speed.jsonl``; ``make tables`` shows it in ``tables/sentence.md``.
Run: ``python -m benchmarks.senteval_speed``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from common.cli import Parser, at_least, run_main
from common.io import check_output_file
from common.records import append_record, make_record

if TYPE_CHECKING:  # numpy is imported where it runs, so that --help answers at once
    import numpy as np

RECORDS = Path(__file__).resolve().parent.parent / "tables" / "records" / "senteval_speed.jsonl"
LEGACY_MAX_ITER = 200


def legacy_classifier(config, jobs: int, max_iter: int = LEGACY_MAX_ITER):
    """The pre-issue-21 classifier: ``StandardScaler`` + ``LogisticRegressionCV`` (lbfgs) over the C grid."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    inner = StratifiedKFold(config.inner_kfold, shuffle=True, random_state=config.seed)
    return make_pipeline(StandardScaler(), LogisticRegressionCV(
        Cs=list(config.c_grid), cv=inner, scoring="accuracy", max_iter=max_iter, l1_ratios=(0.0,),
        use_legacy_attributes=False, n_jobs=jobs))


def legacy_scores(task, features: dict[str, np.ndarray], config, n_jobs: int,
                  max_iter: int = LEGACY_MAX_ITER) -> dict[str, float]:
    """The pre-issue-21 classifier on ready-made features (the "before" of this benchmark); a larger
    ``max_iter`` shows what it scores once lbfgs converges."""
    import numpy as np
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    def classifier(jobs: int):
        return legacy_classifier(config, jobs, max_iter)

    labels = {name: split.labels for name, split in task.splits.items()}
    if task.protocol == "cv":
        outer = StratifiedKFold(config.kfold, shuffle=True, random_state=config.seed)
        return {task.name: 100.0 * float(np.mean(cross_val_score(classifier(1), features["all"], labels["all"],
                                                                  cv=outer, n_jobs=n_jobs)))}
    predicted = classifier(n_jobs).fit(features["train"], labels["train"]).predict(features["test"])
    accuracy = 100.0 * float(np.mean(predicted == labels["test"]))
    if task.splits["train"].second is None:
        return {task.name: accuracy}
    return {f"{task.name}_acc": accuracy, f"{task.name}_f1": 100.0 * float(f1_score(labels["test"], predicted))}


def measure(name: str, encoder, config, n_jobs: int) -> dict:
    """Per task: encode seconds (cache cold or hit), legacy and new classifier seconds and scores."""
    from sentence.config import TASKS
    from sentence.senteval import encoder_identity, evaluate_task, load_task, task_features

    tasks = []
    for task_name in TASKS:
        task = load_task(task_name)
        start = time.perf_counter()
        features = {split_name: task_features(encoder, split, config.batch_size) for split_name, split in task.splits.items()}
        encode_s = time.perf_counter() - start
        start = time.perf_counter()
        before = legacy_scores(task, features, config, n_jobs)
        legacy_s = time.perf_counter() - start
        after, seconds = evaluate_task(encoder, task, config, n_jobs)  # embeddings now come from the cache
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start = time.perf_counter()
            serial, _ = evaluate_task(encoder, task, config, 1)
            serial_s = time.perf_counter() - start
        tasks.append({
            "task": task_name, "encode_s": round(encode_s, 2), "legacy_classify_s": round(legacy_s, 2),
            "classify_s": round(seconds["classify_s"], 2), "cached_encode_s": round(seconds["encode_s"], 2),
            "classify_1job_s": round(serial_s, 2),
            "serial_same_scores": serial == after,
            "convergence_warnings": sum("ConvergenceWarning" in type(w.message).__name__ for w in caught),
            "before": before, "after": after,
            "max_abs_diff": max(abs(after[k] - before[k]) for k in before),
        })
        print(f"{name} {task_name}: encode {encode_s:.0f} s, classifier {legacy_s:.1f} -> {seconds['classify_s']:.1f} s "
              f"(1 job {serial_s:.1f} s), max |diff| {tasks[-1]['max_abs_diff']:.3f}", flush=True)
    total = {key: round(sum(t[key] for t in tasks), 1)
             for key in ("encode_s", "legacy_classify_s", "classify_s", "cached_encode_s", "classify_1job_s")}
    return {"encoder": name, "identity": encoder_identity(encoder), "tasks": tasks, **total,
            "before_s": round(total["encode_s"] + total["legacy_classify_s"], 1),
            "after_cold_s": round(total["encode_s"] + total["classify_s"], 1),
            "after_cached_s": round(total["cached_encode_s"] + total["classify_s"], 1)}


def reference(encoder, config, tasks: list[str], max_iter: int) -> list[dict]:
    """Old classifier at ``max_iter`` against the new one on the same (cached) embeddings, per task."""
    from sentence.senteval import evaluate_task, load_task, task_features

    out = []
    for task_name in tasks:
        task = load_task(task_name)
        features = {name: task_features(encoder, split, config.batch_size) for name, split in task.splits.items()}
        old = legacy_scores(task, features, config, 1, max_iter)
        new, _ = evaluate_task(encoder, task, config, 1)
        out.append({"task": task_name, "legacy": old, "after": new, "max_abs_diff": max(abs(new[k] - old[k]) for k in old)})
        print(f"{task_name}: legacy at max_iter {max_iter} {old} vs new {new}", flush=True)
    return out


TIGHT_TOL = 1e-10


def agreement(encoder, config, tasks: list[str], legacy_iters: tuple[int, ...]) -> list[dict]:
    """Where old and new disagree on a train-test task (TREC, MRPC), and why: the C each one chose, how many
    test predictions differ, and the accuracy of one fit per chosen C run to ``tol`` 1e-10 from a cold start
    (the optimum both approximate; the L2-regularised loss has one)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from sentence.senteval import _fit_predict, _scaled, cv_choice, load_task, task_features

    out = []
    for task_name in tasks:
        task = load_task(task_name)
        features = {name: task_features(encoder, split, config.batch_size) for name, split in task.splits.items()}
        train_y, test_y = task.splits["train"].labels, task.splits["test"].labels
        train_x, test_x = _scaled(features["train"], features["test"])
        start = time.perf_counter()
        c_new = cv_choice(train_x, train_y, config, 1)
        new = _fit_predict(train_x, train_y, test_x, c_new, config)
        entry = {"task": task_name, "test_size": int(len(test_y)), "c_new": c_new,
                 "new_acc": 100.0 * float(np.mean(new == test_y)), "new_s": round(time.perf_counter() - start, 1),
                 "legacy": [], "tight": []}
        legacy_predictions = {}
        for max_iter in legacy_iters:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                start = time.perf_counter()
                model = legacy_classifier(config, 1, max_iter).fit(features["train"], train_y)
                seconds = time.perf_counter() - start
            old = legacy_predictions[max_iter] = model.predict(features["test"])
            entry["legacy"].append({"max_iter": max_iter, "c": float(np.ravel(model[-1].C_)[0]),
                                    "acc": 100.0 * float(np.mean(old == test_y)), "s": round(seconds, 1),
                                    "predictions_differ_from_new": int(np.sum(old != new)),
                                    "convergence_warnings": sum("Convergence" in type(w.message).__name__ for w in caught)})
        for c in sorted({c_new, *(legacy["c"] for legacy in entry["legacy"])}):
            tight = LogisticRegression(C=c, tol=TIGHT_TOL, max_iter=100_000).fit(train_x, train_y)
            predicted = tight.predict(test_x)
            entry["tight"].append({"c": c, "acc": 100.0 * float(np.mean(predicted == test_y)), "iterations": int(np.max(tight.n_iter_)),
                                   "predictions_differ_from_new": int(np.sum(predicted != new)),
                                   "predictions_differ_from_legacy": {str(k): int(np.sum(predicted != v))
                                                                      for k, v in legacy_predictions.items()}})
        print(f"{task_name}: {entry}", flush=True)
        out.append(entry)
    return out


def encode_floor(model, task_names: list[str], chunk: int, batch_size: int, threads: int) -> dict:
    """The GEMM floor of encoding the tasks' sentences once with a sentence-transformers ``model``.

    The cold-cache time of a transformer encoder is its forward passes; their matrix multiplies at fp32
    (``benchmarks.gemm_floor``, replayed back to back) bound it from below, whatever the evaluator does.
    Batches as ``sentence.senteval.encode`` and sentence-transformers form them: distinct sentences by word
    count in chunks of ``chunk``, each chunk by text length (longest first) in batches of ``batch_size``, padded
    to its longest; each distinct (batch, tokens) shape is recorded and replayed once, times its count. Only the
    linear layers count (attention runs in a fused kernel, a few per cent of the FLOPs here), so it is a lower bound.
    """
    from collections import Counter

    import torch

    from benchmarks.gemm_floor import record_gemms, replay_seconds
    from sentence.senteval import distinct_by_length, load_task

    shapes: Counter[tuple[int, ...]] = Counter()
    example: dict[tuple[int, ...], dict] = {}
    sentences = tokens = 0
    for name in task_names:
        for split in load_task(name).splits.values():
            unique, _, order = distinct_by_length(split.first + (split.second or []))
            sentences += len(unique)
            for i in range(0, len(order), chunk):
                part = sorted(unique[order[i : i + chunk]], key=len, reverse=True)
                for j in range(0, len(part), batch_size):
                    features = model.preprocess(part[j : j + batch_size])
                    shape = tuple(features["input_ids"].shape)
                    tokens += int(features["attention_mask"].sum())
                    shapes[shape] += 1
                    example.setdefault(shape, features)
    torch.set_num_threads(threads)
    seconds = gflop = 0.0
    with torch.no_grad():  # not inference_mode: under it linear reaches the recorder whole, not as addmm
        for shape, count in shapes.items():
            gemms = record_gemms(lambda features=example[shape]: model(features))
            seconds += count * replay_seconds(gemms, rounds=2)
            gflop += count * sum(g.flops for g in gemms) / 1e9
    return {"tasks": task_names, "sentences": sentences, "batches": sum(shapes.values()), "shapes": len(shapes),
            "tokens": tokens,
            "padded_tokens": sum(b * n * c for (b, n), c in shapes.items()), "gemm_gflop": round(gflop, 1),
            "floor_s": round(seconds, 1), "threads": threads}


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="python -m benchmarks.senteval_speed", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=Path, default=RECORDS, help="JSONL file the record is appended to")
    p.add_argument("--jobs", type=at_least(0), default=0, help="parallel folds (default 0: all usable cores)")
    p.add_argument("--threads", type=at_least(1), default=1, help="torch threads of the encoders (default 1)")
    p.add_argument("--reference-max-iter", type=at_least(0), default=0,
                   help="instead of timing: score --tasks with the old classifier at this max_iter against the new one")
    p.add_argument("--agreement", action="store_true",
                   help="instead of timing: on --tasks (train-test ones), the C old and new choose, how many test "
                        "predictions differ, and both against fits run to tol 1e-10")
    p.add_argument("--floor", action="store_true",
                   help="instead of timing: the GEMM floor of the shipped MiniLM encoding all six tasks at --threads")
    p.add_argument("--tasks", default="TREC", help="comma-separated tasks of --reference-max-iter/--agreement (default TREC)")
    args = p.parse_args(argv)
    check_output_file(args.records, "--records")
    import torch

    from sentence.config import get_config
    from sentence.corpus import load_corpus
    from sentence.encoders import SentenceTransformerEncoder, load_minilm
    from sentence.run import random_encoder as make_random_encoder
    from sentence.senteval import default_jobs

    torch.set_num_threads(args.threads)
    config = get_config("quick")
    jobs = args.jobs or default_jobs()
    start = time.perf_counter()
    if args.floor:
        from sentence.senteval import TASKS

        encoder = SentenceTransformerEncoder(load_minilm())
        row = encode_floor(encoder.model, list(TASKS), config.eval.batch_size, encoder.batch_size, args.threads)
        append_record(args.records, make_record(pipeline="senteval-floor", config={"eval": config.to_dict()["eval"]},
                                                metrics=row, seed=0, wall_time_s=time.perf_counter() - start))
        print(f"MiniLM encode floor: {row['gemm_gflop']:.0f} GFLOP of fp32 GEMMs take {row['floor_s']:.0f} s "
              f"at {args.threads} thread(s); appended to {args.records}")
        return 0
    random_encoder, _ = make_random_encoder(load_corpus(config.corpus), config)
    if args.agreement:
        encoders = {"random (untrained quick-thought, seed 0)": random_encoder,
                    "all-MiniLM-L6-v2 as shipped": SentenceTransformerEncoder(load_minilm())}
        rows = [{"encoder": name, "tasks": agreement(encoder, config.eval, args.tasks.split(","), (LEGACY_MAX_ITER, 10_000))}
                for name, encoder in encoders.items()]
        append_record(args.records, make_record(
            pipeline="senteval-agreement", config={"eval": config.to_dict()["eval"], "tight_tol": TIGHT_TOL},
            metrics={"rows": rows}, seed=0, wall_time_s=time.perf_counter() - start))
        return 0
    if args.reference_max_iter:
        encoders = {"random (untrained quick-thought, seed 0)": random_encoder,
                    "all-MiniLM-L6-v2 as shipped": SentenceTransformerEncoder(load_minilm())}
        tasks = args.tasks.split(",")
        rows = [{"encoder": name, "tasks": reference(encoder, config.eval, tasks, args.reference_max_iter)}
                for name, encoder in encoders.items()]
        append_record(args.records, make_record(
            pipeline="senteval-reference", config={"eval": config.to_dict()["eval"], "legacy_max_iter": args.reference_max_iter},
            metrics={"rows": rows}, seed=0, wall_time_s=time.perf_counter() - start))
        return 0
    rows = [measure("random (untrained quick-thought, seed 0)", random_encoder, config.eval, jobs),
            measure("all-MiniLM-L6-v2 as shipped", SentenceTransformerEncoder(load_minilm()), config.eval, jobs)]
    settings = {"eval": config.to_dict()["eval"], "legacy_max_iter": LEGACY_MAX_ITER, "jobs": jobs}
    append_record(args.records, make_record(pipeline="senteval-speed", config=settings, metrics={"rows": rows}, seed=0,
                                            wall_time_s=time.perf_counter() - start))
    print(f"appended to {args.records}")
    return 0


if __name__ == "__main__":
    run_main(main)
