"""Regenerate tables/*.md and tables/*.csv from the committed run records alone."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import statistics
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from benchmarks.published import (
    HCL_STL10,
    HCL_STL10_SOURCE,
    INFOGRAPH,
    INFOGRAPH_SOURCE,
    RELEASED_GRAPH,
    RELEASED_GRAPH_SOURCE,
)
from common.cli import run_main
from common.errors import UserError
from common.io import atomic_write_text
from common.records import NUMBER, read_records
from common.stats import format_delta, t_threshold
from graph.report import RECORD_NEEDS as GRAPH_NEEDS
from image.report import RECORD_NEEDS as IMAGE_NEEDS
from sentence.report import RECORD_NEEDS as SENTENCE_NEEDS

TABLES = Path(__file__).resolve().parent.parent / "tables"
_PROVENANCE = {"git_commit": str, "finished_at": str, "seed": int, "wall_time_s": NUMBER, "hardware.cpu": str,
               "hardware.cpu_count": int, "hardware.gpu": (str, type(None)), "hardware.torch_threads": int}
#: The fields each table reads, per pipeline: a record without them is skipped with a warning naming its line.
NEEDS = {pipeline: {**_PROVENANCE, **fields} for pipeline, fields in {
    **GRAPH_NEEDS, **IMAGE_NEEDS, **SENTENCE_NEEDS,
    "graph-epoch-speed": {"metrics.rows": list}, "loss-speed": {"metrics.rows": list},
    "senteval-speed": {"metrics.rows": list}, "senteval-reference": {"metrics.rows": list},
    "senteval-agreement": {"metrics.rows": list},
    "senteval-floor": {f"metrics.{k}": NUMBER for k in ("threads", "sentences", "tokens", "padded_tokens", "batches",
                                                         "gemm_gflop", "floor_s")},
}.items()}


def _provenance(records: list[dict]) -> str:
    commits = sorted({r["git_commit"][:12] for r in records})
    hardware = sorted({_machine(r) if r["hardware"].get("gpu") else f"{_machine(r)}, GPU: none" for r in records})
    return f"{len(records)} run records; commits {', '.join(commits)}; hardware: {'; '.join(hardware)}."


def _machine(record: dict) -> str:
    hw = record["hardware"]
    return f"{hw['cpu']} ({hw['cpu_count']} cores)" + (f", {hw['gpu']}" if hw.get("gpu") else "")


def _per_machine(records: list[dict], extra: Callable[[dict], tuple] = lambda r: ()) -> dict[tuple, list[dict]]:
    """Records grouped by (machine, torch threads, *extra(record)), in first-seen order: timings never mix across them."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        groups[(_machine(r), r["hardware"]["torch_threads"], *extra(r))].append(r)
    return groups


def _latest_provenance(records: list[dict], command: str) -> str:
    """Where the newest of a benchmark's records (the one a speed table shows) was measured."""
    latest, hw = records[-1], records[-1]["hardware"]
    return (f"Latest of {len(records)} `{command}` records: {hw['cpu']} ({hw['cpu_count']} cores, {hw['torch_threads']} "
            f"torch threads), GPU: {hw['gpu'] or 'none'}, commit {latest['git_commit'][:12]}, {latest['finished_at']}")


def _write(out_dir: Path, name: str, lines: list[str]) -> Path:
    path = out_dir / name
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display here or in CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def graph_table(records: list[dict], out_dir: Path) -> Path | None:
    from benchmarks.suites import FRESH_SEEDS, LEADERBOARD_CONFIRMATIONS, LEADERBOARD_GRAPH_DATASETS
    from graph.report import (
        answers,
        confirmations,
        epoch_selection,
        format_answers,
        format_confirmations,
        format_epoch_selection,
        format_table,
        is_confirmation_run,
        summarize,
    )

    records = [r for r in records if r.get("pipeline") == "graph"]
    if not records:
        return None
    # The leaderboard's stage-2 runs (paper protocol, fresh seeds) are the leaderboard's, not this grid's.
    fresh = {(d, seed) for m, d, _, seeds in LEADERBOARD_CONFIRMATIONS if m == "graph" for seed in seeds}
    fresh |= {(d, seed) for d in LEADERBOARD_GRAPH_DATASETS for seed in FRESH_SEEDS["graph"]}
    grid = [r for r in records if not is_confirmation_run(r)
            and not (r["config"]["profile"] == "paper" and (r["config"]["dataset"], r["seed"]) in fresh)]
    rows = summarize(grid)
    profiles = sorted({r["profile"] for r in rows})
    text = [
        "# Graph pipeline: InfoGraph with hard negatives (TU data sets, SVM accuracy)",
        "",
        f"Profiles: {', '.join(f'`{p}`' for p in profiles)} (`quick` = 10 epochs x 3 repeats on CPU; "
        "`paper` = 200 epochs, the released protocol; \"paper, N epochs\" = the paper protocol trained for N epochs "
        "instead). Accuracy: RBF SVM, stratified 10-fold CV, C from an inner 5-fold grid. Repeats share seeds "
        "across methods, so Δ is a paired difference to `infograph` (± its standard error; * marks a two-sided "
        "paired t-test at p < 0.05). `untrained` scores the freshly initialised encoder. tau_plus = 0.5 for "
        "debiased/hard, as in the released code. Timings were taken on a shared CPU (other jobs running) and are "
        "indicative only.",
        "",
        _provenance(records),
        "",
        format_table(rows, INFOGRAPH),
        "",
        f"Published column: {INFOGRAPH_SOURCE}; not measured here.",
        "",
        "## Does hard or debiased sampling beat InfoGraph?",
        "",
        "Per setting and data set, every hard/debiased variant above is a paired t-test against `infograph`; "
        "here the p-values are corrected with Holm-Bonferroni across that (setting, data set)'s variants, so "
        "that the chance of any false \"significant\" stays at 5% (the stars above test each row alone). "
        "\"none\" means no variant differs from InfoGraph beyond noise at these repeats. The last column sizes what "
        "the repeats rule out: the upper end of 95% intervals for the variants' Δ, taken jointly over them "
        "(Bonferroni), so with 95% confidence no variant adds more accuracy than that.",
        "",
        format_answers(answers(rows)),
        "",
        "### Confirmation on fresh seeds",
        "",
        "A grid this size turns up some promising differences by chance, so every hard/debiased variant whose mean "
        "Δ on the 10-repeat grid was positive with an uncorrected p < 0.1 (none survived Holm) was declared in "
        "`graph/report.py` (`CONFIRMATIONS`, committed before these runs) and run again, with `infograph` and "
        "`untrained`, on seeds the pick never saw (stage 1: `--seed 10 --repeats 10`). The variants whose fresh Δ "
        "was again positive with p < 0.1 went on to a second, larger stage (`--seed 20 --repeats 20`), declared "
        "likewise. Only a stage's own fresh seeds enter its test, Holm-corrected over the variants of that stage; "
        "these runs are left out of the tables above.",
        "",
        format_confirmations(confirmations(records)),
        "",
        "The authors' released graph code, for comparison (not measured by this project's records; source: "
        f"{RELEASED_GRAPH_SOURCE}):",
        "",
        "| dataset | method | accuracy % |",
        "|---|---|---|",
        *(f"| {d} | {m} | {acc} |" for d, methods in RELEASED_GRAPH.items() for m, acc in methods.items()),
    ]
    selection = epoch_selection(grid)
    if selection:
        text += [
            "",
            "## Epoch count, and choosing it on the test folds",
            "",
            "Runs made with `--eval-at` also scored their embeddings after those epochs (the same SVM protocol; "
            "the main table uses the final epoch only). The last two columns choose the epoch by these very "
            "scores, as one does when a grid of epoch counts is tried with no held-out data: an optimistic "
            "number, shown to size how much such a choice can add, not as a result.",
            "",
            format_epoch_selection(selection),
        ]
    path = _write(out_dir, "graph.md", text)
    atomic_write_text(out_dir / "graph.tex", _latex(rows))
    _plot_graph_betas(rows, out_dir / "graph_beta.png")
    buffer = io.StringIO(newline="")
    csv_rows = [{**r, "published_infograph": INFOGRAPH.get(r["dataset"])} for r in rows]  # apart from ours, named
    writer = csv.DictWriter(buffer, fieldnames=list(csv_rows[0]))
    writer.writeheader()
    writer.writerows(csv_rows)
    atomic_write_text(out_dir / "graph.csv", buffer.getvalue())
    return path


def graph_speed_table(records: list[dict], out_dir: Path) -> Path | None:
    """The newest record of each (machine, torch threads, subnormal flushing, memory kept): speed-ups differ between them."""
    records = [r for r in records if r.get("pipeline") == "graph-epoch-speed"]
    if not records:
        return None
    groups = _per_machine(records, lambda r: (r["config"].get("flush_denormal", False), r["config"].get("retain_freed_memory", False)))
    lines = [
        "# InfoGraph epoch time: released training loop vs ours (batch 128, GIN 3x32, float32, plain JSD objective)",
        "",
        "Best of the alternating epochs after a warm-up epoch (the warm-up holds the one-off compilation). The "
        "released loop re-collates batches every epoch, sums neighbours with PyG's GINConv (gather along edges, "
        "scatter-add) and builds its masks node by node in Python. Ours collates once, sums neighbours as a CSR "
        "product built once per batch (records from 2026-12-01T21:49 on; the neighbour-sum columns time one width-32 "
        "layer forward and backward on the first batch both ways) and needs no masks; in records from 2026-12-02T09:20 on, it also scores each class of nodes that the encoder cannot tell apart "
        "(same Weisfeiler-Lehman colour, same graph) once, weighted by the class size: the same loss and gradients "
        "as scoring every node (graph/wl.py; `ours, every node scored` times it without; the batching column is the one-off cost of collating and colouring, per run). The GEMM floor "
        "replays only the matrix multiplies of one of our epochs (same shapes and layouts, forward and backward), "
        "back to back: released / floor bounds what rewriting the rest of our epoch at float32 could add. Subnormal floats are flushed (or kept), and freed memory kept in the process (or returned to "
        "the kernel, glibc's default, common/allocator.py), for every loop of a record alike. One section per "
        "machine and setting, from its newest record.",
    ]
    for (machine, threads, flushed, retained), group in groups.items():
        latest = group[-1]
        memory = ", freed memory kept" if retained else ""
        lines += ["", f"## {machine}, {threads} torch threads, subnormals {'flushed' if flushed else 'kept'}{memory}",
                  "", f"{_latest_provenance(group, 'python -m benchmarks.graph_epoch_speed')}, OMP_WAIT_POLICY "
                  f"{latest['config'].get('omp_wait_policy', 'unrecorded')}, best of {latest['config']['epochs']} epochs.",
                  "", *_graph_speed_rows(latest)]
    return _write(out_dir, "graph_epoch_speed.md", lines)


def _graph_speed_rows(record: dict) -> list[str]:
    loops = record["config"]["loops"][1:]  # after "released"
    names = {"ours": ("ours", ""), "every-node": ("ours, every node scored", " (every node)"),
             "compiled": ("ours + torch.compile", " (compiled)")}
    header = ["data set", "graphs", "nodes", "released loop s/epoch", "of which masks s"]
    header += [f"{names[loop][0]} s/epoch" for loop in loops] + [f"speed-up{names[loop][1]}" for loop in loops]
    floors = all("gemm_floor_s" in r for r in record["metrics"]["rows"])
    header += ["GEMM floor s/epoch", "GFLOP/epoch", "speed-up bound"] if floors else []
    sums = all("neighbour_sum_ms" in r for r in record["metrics"]["rows"])
    distinct = all("rows_scored" in r for r in record["metrics"]["rows"])
    header += ["neighbour sum ms, PyG", "neighbour sum ms, CSR"] if sums else []
    header += ["rows scored (ours)", "batching s (once per run)"] if distinct else []
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in record["metrics"]["rows"]:
        cells = [r["dataset"], str(r["graphs"]), str(r["nodes"]), f"{r['released_s']:.3f}", f"{r['released_mask_s']:.3f}"]
        cells += [f"{r[f'{loop}_s']:.3f}" for loop in loops] + [f"{r[f'speedup_{loop}']:.1f}x" for loop in loops]
        cells += [f"{r['gemm_floor_s']:.3f}", f"{r['gemm_gflop']:.1f}", f"{r['max_speedup']:.1f}x"] if floors else []
        cells += [f"{r['neighbour_sum_ms'][way]:.2f}" for way in ("gather_scatter", "csr")] if sums else []
        cells += [f"{r['rows_scored']} ({r['nodes'] / r['rows_scored']:.2f}x fewer)", f"{r['collate_s']:.2f}"] if distinct else []
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def image_table(records: list[dict], out_dir: Path) -> Path | None:
    from image.report import UNTRAINED, rows

    records = [r for r in records if r.get("pipeline") == "image"]
    if not records:
        return None
    lines = [
        "| profile | data | encoder | epochs | method | kNN top-1 % | linear top-1 % | Δ kNN vs simclr | Δ linear vs simclr "
        "| n |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    table = rows(records)
    for row in table:
        shown_epochs = "0 (random init)" if row.method == UNTRAINED else row.epochs
        knn, linear = (_mean_std(v, 2) if v else "–" for v in (row.knn, row.linear))
        lines.append(f"| {row.profile} | {row.data} | {row.arch} | {shown_epochs} | {row.method} | {knn} "
                     f"| {f'**{linear}**' if row.best else linear} | {format_delta(row.delta_knn)} "
                     f"| {format_delta(row.delta_linear)} | {row.n} |")
    seeds = sorted({row.n for row in table if row.n > 1})
    thresholds = ", ".join(f"|Δ| > {t_threshold(n):.1f} s.e. with {n} seeds" for n in seeds) or "two seeds or more"
    published = ["| method | linear top-1 % (published) |", "|---|---|",
                 *(f"| {name} | {acc:.2f} |" for name, acc in HCL_STL10.items())]
    text = [
        "# Image pipeline: SimCLR with hard negatives",
        "",
        "kNN: weighted k=200 on encoder features; linear: probe on frozen features (best method per setting in "
        "bold). Δ: paired by seed against simclr (each seed also fixes the training subset), ± its standard error, "
        f"* when a two-sided paired t-test gives p < 0.05 (that needs {thresholds}). "
        "`quick` is the CPU profile (compact ResNet-18, 1,000 images per class, few epochs) and is not comparable "
        "to the published setting.",
        "",
        _provenance(records),
        "",
        *lines,
        "",
        "## Time, per machine and thread count",
        "",
        "Seconds and images/s (two views each) of each method's pretraining, and seconds of the whole "
        "`python -m image run` of one seed (random-init baseline and every method, evaluation included); n counts "
        "runs (seeds), mean ± std over them. Timings depend on the "
        "machine and its other load: the 1-thread runs shared the CPU with other jobs.",
        "",
        *_image_speed_lines(records),
        *_image_gpu_lines(records),
        "",
        f"## Published (not measured here): {HCL_STL10_SOURCE}",
        "",
        *published,
    ]
    return _write(out_dir, "image.md", text)


def _image_speed_lines(records: list[dict]) -> list[str]:
    """Timing rows of the CPU image records, grouped by (profile, machine, torch threads): never averaged across them.

    GPU runs have their own table (:func:`_image_gpu_lines`): their runtime options differ run by run.
    """
    groups = _per_machine([r for r in records if not r["hardware"].get("gpu")], lambda r: (r["config"]["profile"],))
    lines = ["| profile | machine | torch threads | what | n | seconds | images/s |", "|---|---|---|---|---|---|---|"]
    for (machine, threads, profile), group in groups.items():
        by_method: dict[str, list[dict]] = defaultdict(list)
        by_seed: dict[int, float] = defaultdict(float)
        for r in group:
            by_method[r["config"]["method"]].append(r["metrics"])
            by_seed[r["seed"]] += r["wall_time_s"]
        for method, metrics in by_method.items():
            if "pretrain_s" in metrics[0]:
                lines.append(f"| {profile} | {machine} | {threads} | pretrain {method} | {len(metrics)} "
                             f"| {_mean_std(m['pretrain_s'] for m in metrics)} "
                             f"| {_mean_std(m['images_per_s'] for m in metrics)} |")
        lines.append(f"| {profile} | {machine} | {threads} | whole run | {len(by_seed)} "
                     f"| {_mean_std(by_seed.values())} | |")
    return lines


def _image_gpu_lines(records: list[dict]) -> list[str]:
    """Per-epoch time of each GPU pretraining run with its runtime options; epoch 1 holds warm-up and compilation."""
    runs = [r for r in records if r["hardware"].get("gpu") and "epoch_s" in r["metrics"]]
    if not runs:
        return []
    lines = ["", "## Epoch time on GPU", "",
             "One row per GPU pretraining run (`python -m image run` records, in the order they ran; ranks marked "
             "torchrun ran under it, where the NCCL process group and DDP run even with one rank). Later epochs: "
             "median seconds of epochs 2 on; images/s counts images of the global batch (two views each).", "",
             "| GPU | profile | encoder | batch | objective | bf16 | channels-last | compile | sync-bn | ranks | epoch 1 s "
             "| later epochs s | images/s | peak MiB | kNN % | linear % | commit |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        c, m = r["config"], r["metrics"]
        later = m["epoch_s"][1:]
        steady = statistics.median(later) if later else None
        rate = f"{c['pretrain_images'] // c['batch_size'] * c['batch_size'] / steady:.0f}" if steady else "–"
        flags = " | ".join("yes" if c.get(k) else "no" for k in ("bf16", "channels_last", "compile", "sync_bn"))
        ranks = f"{m.get('ranks', '–')}{' (torchrun)' if r['command'].startswith('torchrun') else ''}"
        commit = r["git_commit"].removesuffix("-dirty")[:12] + ("-dirty" if r["git_commit"].endswith("-dirty") else "")
        lines.append(f"| {r['hardware']['gpu']} | {c['profile']} | {c['arch_label']} | {c['batch_size']} | {c['method']} "
                     f"| {flags} | {ranks} | {m['epoch_s'][0]:.1f} | {f'{steady:.1f}' if steady else '–'} "
                     f"| {rate} | {m['peak_memory_mb']:.0f} | {m['knn_top1']:.2f} | {m['linear_top1']:.2f} | {commit} |")
    return lines


def _mean_std(values, digits: int = 0) -> str:
    """``mean ± std`` (just the mean for a single value)."""
    values = list(values)
    mean = f"{statistics.fmean(values):.{digits}f}"
    return mean + (f" ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else "")


def _sentence_losses(records: list[dict], profile: str) -> dict[str, str]:
    """Quick-thought method -> its loss settings as text, from the recorded objective.

    Records from before the objective registry name the method (a registry alias or family: its
    spec) and, some of them, ``tau_plus`` and ``beta``.
    """
    from common.objectives import from_dict, parse_objective
    from sentence.config import DEFAULT_OBJECTIVES

    objectives = {spec: parse_objective(spec) for spec in DEFAULT_OBJECTIVES}
    for r in records:
        c = r["config"]
        if c.get("profile") == profile and "method" in c:
            if "objective" in c:
                objectives[c["method"]] = from_dict(c["objective"])
            elif "tau_plus" in c:
                objectives[c["method"]] = parse_objective(c["method"]).replace(tau_plus=c["tau_plus"], beta=c["beta"])
    losses = {}
    for method, objective in objectives.items():
        values = objective.arguments()
        hcl = {"tau_plus", "beta"} <= set(values)
        losses[method] = f"tau_plus={values['tau_plus']:g} beta={values['beta']:g}" if hcl else str(objective)
    return losses


def sentence_table(records: list[dict], out_dir: Path) -> Path | None:
    """tables/sentence.md: composed from sentence/report.py's rows (the computation lives there)."""
    from sentence import report

    current = report.rows(records)
    sentence = [r for r in records if r.get("pipeline") == "sentence"]
    if not sentence:
        return None
    shown = [r for r in sentence if r["config"].get("evaluator")]
    text = ["# Sentence pipeline: quick-thought and MiniLM fine-tunes with hard negatives, SentEval-style transfer "
            "(accuracy %)", "",
            "Scores: mean ± std over seeds. avg: mean accuracy over the row's tasks (MRPC by accuracy), the score the "
            "verdicts use: MR, CR, SUBJ, MPQA, TREC and MRPC, or the subset its setting names (a quick CPU run; its rows "
            "are compared only with rows of the same setting). Δ: paired by seed, ± its standard error, * when a paired t-test alone gives p < 0.05; "
            "'beyond Holm' when it survives the Holm correction over every comparison of its block (quick-thought: "
            "debiased and hard vs plain, every method vs the untrained encoder of the same seed; fine-tunes: each "
            "variant vs plain, every variant vs the shipped model, whose single score is compared with the seeds as a "
            "one-sample test). Fine-tunes: all-MiniLM-L6-v2 on (sentence, next sentence) pairs of the training books, "
            "the same pairs, steps and seeds for every variant; loss first → last is the first step and the mean of "
            "the last 10 steps; anchors on floor: share of anchors whose debiased negative term is clamped at "
            "N e^{-1/t}. `quick` is the 2-core CPU profile.", "",
            _provenance(shown) if shown else "", "", report.markdown_table(current), ""]
    for profile in sorted({r["config"]["profile"] for r in shown}):
        settings = next(r["config"]["settings"] for r in shown if r["config"]["profile"] == profile)
        train, model, ev = settings["train"], settings["model"], settings["eval"]
        tunes: dict[str, dict] = {}  # fine-tune settings per setting label (the latest record's)
        for r in shown:
            if r["config"]["profile"] == profile and r["config"]["row"].startswith("minilm-"):
                tasks = tuple(t for t in report.ALL_TASKS if t in r["config"]["tasks"])
                tunes[report.setting_label(profile, tasks)] = r["config"]["settings"]["finetune"]
        text += [f"Profile `{profile}`: quick-thought GRUs embedding {model['embed_dim']} / hidden {model['hidden_dim']}, "
                 f"{train['steps']} steps of {train['batch_size']} consecutive sentences (<= {train['max_tokens']} "
                 f"tokens), Adam lr {train['lr']}, temperature {train['temperature']}; "
                 + ", ".join(f"{m} {loss}" for m, loss in _sentence_losses(sentence, profile).items())
                 + ". Fine-tunes: " + "; ".join(
                     f"`{label}` {tune['steps']} steps of {tune['batch_size']} pairs, AdamW lr {tune['lr']}, scale "
                     f"{tune['scale']:g}, max {tune['max_seq_length']} tokens" for label, tune in sorted(tunes.items()))
                 + "; each record's config holds its variant's loss and parameters. Evaluation: logistic "
                 f"regression on standardised embeddings, {ev['kfold']}-fold CV (MR, CR, SUBJ, MPQA) with C from an "
                 f"inner {ev['inner_kfold']}-fold search over {', '.join(map(str, ev['c_grid']))}; TREC and MRPC on "
                 f"their test splits.", ""]
    old = len(sentence) - len(shown)
    if old:
        text += [f"{old} older record(s) of the previous evaluator and the dropout-copy fine-tune (loss ~1e-4 from the "
                 "first step) are kept in tables/records/sentence.jsonl but not compared here.", ""]
    curves = report.loss_curves(records)
    if curves:
        text += ["## Fine-tune loss curves (first step, then the mean of every 10 steps)", "", *curves, ""]
    speed = report.speed_table(records)
    if speed:
        text += ["## Evaluation seconds per encoder, six tasks (`python -m benchmarks.senteval_speed`)", "",
                 "Before: the old evaluator (every call re-encodes; LogisticRegressionCV, lbfgs max_iter 200). After: "
                 "embeddings cached by content, warm-started lbfgs path over C, folds in parallel processes; same "
                 "embeddings, same folds. Seconds were measured with other jobs sharing the 2-core CPU.", "", *speed, ""]
    agreement = report.agreement_table(records)
    if agreement:
        text += ["## Why TREC and MRPC moved by more than 0.1 points (`python -m benchmarks.senteval_speed --agreement "
                 "--tasks TREC,MRPC`)", "",
                 "The same embeddings and inner folds through the old classifier (LogisticRegressionCV) and the new one, "
                 "and one fit per chosen C run to a tight tolerance from a cold start (the L2-regularised loss has one "
                 "optimum, so this is what both approximate). One TREC question is 0.2 points, one MRPC pair 0.06.", "",
                 *agreement, "",
                 "Reading: at max_iter 200 the old classifier stops before converging (the warnings above) and can "
                 "choose another C; at max_iter 10000 both choose the same C, and the new classifier's accuracy is the "
                 "tight fit's (last two columns), so the remaining differences are the old classifier's. Its final "
                 "refit starts from the mean of the folds' coefficients (LogisticRegressionCV's refit) and stops at "
                 "tol 1e-4 near them, the likely reason it ends further from the optimum (not isolated here).", ""]
    text += ["Train/eval seconds were measured with other jobs sharing the 2-core CPU and are indicative only."]
    return _write(out_dir, "sentence.md", text)


def leaderboard_table(records: list[dict], out_dir: Path) -> Path | None:
    """tables/leaderboard.{json,md,html,png}, and its headline in the README between the leaderboard markers."""
    from benchmarks.leaderboard_md import readme_section, write

    if not any(r.get("pipeline") in ("graph", "image", "sentence") for r in records):
        return None
    files = write(records, out_dir, _pyplot())
    for name, text in files:
        atomic_write_text(out_dir / name, text)
    board = json.loads(dict(files)["leaderboard.json"])
    body = [f"_{line[2:]}_" if line.startswith("# ") else line for line in readme_section(board)]
    _readme_section(out_dir.parent / "README.md", [f"Hours of CPU in the records so far: {_hours(records)}.", "", *body])
    return out_dir / "leaderboard.md"


def _hours(records: list[dict]) -> str:
    """Recorded run time per pipeline, so a reader can size the rest of the suite (issue: CPU-hours per modality)."""
    seconds: dict[str, float] = {}
    for r in records:
        if r.get("pipeline") in ("graph", "image", "sentence"):
            seconds[r["pipeline"]] = seconds.get(r["pipeline"], 0.0) + float(r.get("wall_time_s") or 0.0)
    return ", ".join(f"{name} {s / 3600:.1f} h" for name, s in sorted(seconds.items()))


def _readme_section(readme: Path, body: list[str]) -> None:
    """Replace the text between the README's leaderboard markers (generated, like every table)."""
    start, end = "<!-- leaderboard: generated by `make tables` -->", "<!-- /leaderboard -->"
    if not readme.exists() or start not in (text := readme.read_text()):
        return
    before, rest = text.split(start, 1)
    after = rest.split(end, 1)[1] if end in rest else ""
    atomic_write_text(readme, before + start + "\n" + "\n".join(body) + "\n" + end + after)


def loss_speed_table(records: list[dict], out_dir: Path) -> Path | None:
    """One section per (machine, torch threads), from its newest record; the plot shows the newest record of all."""
    records = [r for r in records if r.get("pipeline") == "loss-speed"]
    if not records:
        return None
    lines = ["# Loss speed (forward + backward, float32)", "",
             "Median of repeated runs after a warm-up; ratio to the first row of each block. One section per machine "
             f"and thread count, from its newest record; loss_speed.png plots the newest record ({_machine(records[-1])})."]
    for (machine, threads), group in _per_machine(records).items():
        rows = group[-1]["metrics"]["rows"]
        lines += ["", f"## {machine}, {threads} torch threads", "", f"{_latest_provenance(group, 'make bench-loss')}.", ""]
        if not any("peak_mb" in r for r in rows):  # records before the objective rows
            lines += ["| inputs | loss | ms | ratio |", "|---|---|---|---|",
                      *(f"| {r['inputs']} | {r['loss']} | {1000 * r['seconds']:.2f} | {r['ratio']:.2f} |" for r in rows)]
            continue
        exact = "mmapped" in group[-1]["config"].get("peak_memory", "")
        lines += ["Objective rows: every registered contrastive objective at its defaults through `build(spec)` on two "
                  "views, ratio to our NT-Xent path (`ntxent`) in the same run; peak MB: the rise of the process's peak "
                  "resident memory during one forward+backward after a warm-up (Linux VmHWM, reset before the call"
                  + ("; every block of 64 KiB or more mmapped, so it follows the tensors alive at once" if exact else
                     "; glibc reuses freed memory here, so a peak depends on what ran before")
                  + "), and that peak in (2B x 2B) float32 matrices. Selection rows: the order statistics FNC, ring and "
                  "MoCHi need, on one (2B x 2B) matrix, against a full row sort. Step rows: a ResNet-18 training step "
                  "with each objective, and each loss alone with the step ratio it implies.", "",
                  "| inputs | loss | ms | ratio | peak MB | peak, (2B)² matrices |", "|---|---|---|---|---|---|",
                  *(f"| {r['inputs']} | {r['loss']} | {1000 * r['seconds']:.2f} | {r['ratio']:.2f} | "
                    + (f"{r['peak_mb']:.0f} | {r['peak_matrices']:.1f} |" if "peak_mb" in r else " | |") for r in rows)]
    _plot_loss_speed(records[-1]["metrics"]["rows"], out_dir / "loss_speed.png")
    return _write(out_dir, "loss_speed.md", lines)


def _plot_loss_speed(rows: list[dict], path: Path) -> None:
    plt = _pyplot()
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for r in rows:
        if r["inputs"].startswith("B="):
            series[r["loss"]].append((int(r["inputs"].split(",")[0][2:]), 1000 * r["seconds"]))
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in series.items():
        ax.plot(*zip(*sorted(points), strict=True), marker="o", label=name)
    ax.set(xscale="log", yscale="log", xlabel="batch size B (2B anchors)", ylabel="forward+backward ms",
           title="Contrastive loss time")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_graph_betas(rows: list[dict], path: Path) -> None:
    """Accuracy against beta per data set (its `paper` rows when it has them, else its first setting);
    plain and debiased baselines as horizontal lines."""
    plt = _pyplot()
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    fig, axes = plt.subplots(1, len(datasets), figsize=(3 * len(datasets), 3), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        settings = [r["profile"] for r in rows if r["dataset"] == dataset]
        setting = "paper" if "paper" in settings else settings[0]
        mine = [r for r in rows if r["dataset"] == dataset and r["profile"] == setting]
        for convention, marker in (("paper", "o"), ("reference", "s")):
            points = sorted((float(r["method"].split("b=")[1].split()[0]), r["mean"]) for r in mine
                            if r["method"].startswith("hard") and f"[{convention}]" in r["method"])
            if points:
                ax.plot(*zip(*points, strict=True), marker=marker, label=f"hard [{convention}]")
        for r in mine:
            if r["method"] in ("infograph", "untrained") or r["method"].startswith("debiased"):
                ax.axhline(r["mean"], linestyle="--" if r["method"] != "untrained" else ":", linewidth=1,
                           color={"infograph": "k", "untrained": "grey", "debiased [reference]": "tab:olive"}.get(r["method"], "tab:green"), label=r["method"])
        ax.set(title=f"{dataset} ({setting})", xlabel="beta", ylabel="accuracy %")
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _latex(rows: list[dict]) -> str:
    lines = [r"\begin{tabular}{lllrr}", r"\toprule", r"data set & method & profile & accuracy (\%) & $\Delta$ \\", r"\midrule"]
    for r in rows:
        delta = "" if r["delta_vs_infograph"] is None else f"{r['delta_vs_infograph']:+.2f}"
        method = r["method"].replace("_", r"\_")
        lines.append(f"{r['dataset'].replace('_', chr(92) + '_')} & {method} & {r['profile']} & "
                     f"{r['mean']:.2f} $\\pm$ {r['std']:.2f} & {delta} \\\\")
    return "\n".join([*lines, r"\bottomrule", r"\end{tabular}", ""])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Regenerate tables/ from the run records in tables/records/*.jsonl.")
    p.add_argument("--records", type=Path, default=TABLES / "records", help="folder of JSONL run records")
    p.add_argument("--out", type=Path, default=TABLES, help="where the tables are written")
    args = p.parse_args(argv)
    if not args.records.exists():
        raise UserError(f"--records {args.records} does not exist; give the folder of JSONL run records (tables/records)")
    own = args.out.resolve() == TABLES.resolve()
    if own and args.records.resolve() != (TABLES / "records").resolve():
        raise UserError(f"--records {args.records} are not the committed tables/records, and their tables would replace "
                        "the committed ones in tables/; give --out DIR for a folder of their own")
    records = read_records(args.records, NEEDS)
    for path in _write_pages(records, args.out, TABLES.parent / "README.md" if own else None):
        print(f"wrote {path}")
    return 0


def _write_pages(records: list[dict], out: Path, readme: Path | None) -> list[Path]:
    """Write every page into a staging folder inside ``out``, then move them in: a failure or a kill part way
    leaves the old set whole, never a mix. ``readme``, the repository README beside the repository's own
    tables/, gets the leaderboard section; no other README is touched."""
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out, prefix=".staging-"))
    try:
        pages = staging / out.resolve().name  # leaderboard_table writes the README beside its folder: staging's copy
        pages.mkdir()
        if readme is not None and readme.is_file():
            shutil.copyfile(readme, staging / "README.md")
        written = [path.name for path in (table(records, pages) for table in (
            graph_table, graph_speed_table, image_table, sentence_table, loss_speed_table, leaderboard_table)) if path]
        for page in sorted(pages.iterdir()):
            os.replace(page, out / page.name)
        if readme is not None and (staging / "README.md").is_file() and (staging / "README.md").read_bytes() != readme.read_bytes():
            os.replace(staging / "README.md", readme)
        return [out / name for name in written]
    finally:
        shutil.rmtree(staging, ignore_errors=True)


if __name__ == "__main__":
    run_main(main)
