"""tables/image.md: SimCLR with hard negatives, its timings per machine and on GPU (prose and layout; the rows
come from ``image.report``)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from benchmarks.pages import per_machine, provenance, write_page
from benchmarks.published import HCL_STL10, HCL_STL10_SOURCE
from common.format import MISSING, markdown_table, mean_sd, number, paired
from common.stats import t_threshold


def image_table(records: list[dict], out_dir: Path) -> Path | None:
    """Accuracy per (profile, data, encoder, method) with its paired Δ to NT-Xent, then the timings."""
    from image.identity import UNTRAINED
    from image.report import BASELINE, rows

    records = [r for r in records if r.get("pipeline") == "image"]
    if not records:
        return None
    table = rows(records)
    body = []
    for row in table:
        shown_epochs = "0 (random init)" if row.method == UNTRAINED else row.epochs
        knn, linear = mean_sd(row.knn), mean_sd(row.linear)
        body.append([row.profile, row.data, row.arch, shown_epochs, row.method, knn,
                     f"**{linear}**" if row.best else linear, paired(row.delta_knn), paired(row.delta_linear), row.n])
    lines = markdown_table(["profile", "data", "encoder", "epochs", "method", "kNN top-1 %", "linear top-1 %",
                            f"Δ kNN vs {BASELINE}", f"Δ linear vs {BASELINE}", "n"], body)
    seeds = sorted({row.n for row in table if row.n > 1})
    thresholds = ", ".join(f"|Δ| > {t_threshold(n):.1f} s.e. with {n} seeds" for n in seeds) or "two seeds or more"
    published = markdown_table(["method", "linear top-1 % (published)"], [[n, number(a)] for n, a in HCL_STL10.items()])
    text = [
        "# Image pipeline: SimCLR with hard negatives",
        "",
        "kNN: weighted k=200 on encoder features; linear: probe on frozen features (best method per setting in "
        f"bold). Δ: paired by seed against {BASELINE} (SimCLR's loss; each seed also fixes the training subset), "
        "± its standard error, "
        f"* when a two-sided paired t-test gives p < 0.05 (that needs {thresholds}). "
        "`quick` is the CPU profile (compact ResNet-18, 1,000 images per class, few epochs) and is not comparable "
        "to the published setting.",
        "",
        provenance(records),
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
        *image_speed_lines(records),
        *image_gpu_lines(records),
        "",
        f"## Published (not measured here): {HCL_STL10_SOURCE}",
        "",
        *published,
    ]
    return write_page(out_dir, "image.md", text)


def image_speed_lines(records: list[dict]) -> list[str]:
    """Timing rows of the CPU image records, grouped by (profile, machine, torch threads): never averaged across them.

    GPU runs have their own table (:func:`image_gpu_lines`): their runtime options differ run by run.
    """
    from image.report import label_of

    groups = per_machine([r for r in records if not r["hardware"].get("gpu")], lambda r: (r["config"]["profile"],))
    body = []
    for (machine, threads, profile), group in groups.items():
        by_method: dict[str, list[dict]] = defaultdict(list)
        by_seed: dict[int, float] = defaultdict(float)
        for r in group:
            by_method[label_of(r["config"])].append(r["metrics"])
            by_seed[r["seed"]] += r["wall_time_s"]
        for method, metrics in by_method.items():
            if "pretrain_s" in metrics[0]:
                body.append([profile, machine, threads, f"pretrain {method}", len(metrics),
                             mean_sd((m["pretrain_s"] for m in metrics), 0),
                             mean_sd((m["images_per_s"] for m in metrics), 0)])
        body.append([profile, machine, threads, "whole run", len(by_seed), mean_sd(by_seed.values(), 0), None])
    return markdown_table(["profile", "machine", "torch threads", "what", "n", "seconds", "images/s"], body)


def image_gpu_lines(records: list[dict]) -> list[str]:
    """Per-epoch time of each GPU pretraining run with its runtime options; epoch 1 holds warm-up and compilation."""
    from image.report import label_of

    runs = [r for r in records if r["hardware"].get("gpu") and "epoch_s" in r["metrics"]]
    if not runs:
        return []
    lines = ["", "## Epoch time on GPU", "",
             "One row per GPU pretraining run (`python -m image run` records, in the order they ran; ranks marked "
             "torchrun ran under it, where the NCCL process group and DDP run even with one rank). Later epochs: "
             "median seconds of epochs 2 on; images/s counts images of the global batch (two views each).", ""]
    body = []
    for r in runs:
        c, m = r["config"], r["metrics"]
        later = m["epoch_s"][1:]
        steady = statistics.median(later) if later else None
        rate = number(c["pretrain_images"] // c["batch_size"] * c["batch_size"] / steady, 0) if steady else MISSING
        flags = ["yes" if c.get(k) else "no" for k in ("bf16", "channels_last", "compile", "sync_bn")]
        ranks = f"{m.get('ranks', MISSING)}{' (torchrun)' if r['command'].startswith('torchrun') else ''}"
        commit = r["git_commit"].removesuffix("-dirty")[:12] + ("-dirty" if r["git_commit"].endswith("-dirty") else "")
        body.append([r["hardware"]["gpu"], c["profile"], c["arch_label"], c["batch_size"], label_of(c), *flags, ranks,
                     number(m["epoch_s"][0], 1), number(steady, 1) if steady else MISSING, rate,
                     number(m["peak_memory_mb"], 0), number(m["knn_top1"]), number(m["linear_top1"]), commit])
    return lines + markdown_table(["GPU", "profile", "encoder", "batch", "objective", "bf16", "channels-last", "compile",
                                   "sync-bn", "ranks", "epoch 1 s", "later epochs s", "images/s", "peak MiB", "kNN %",
                                   "linear %", "commit"], body)

