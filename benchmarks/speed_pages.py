"""tables/graph_epoch_speed.md and tables/loss_speed.md (+ loss_speed.png): the speed benchmarks' pages, one
section per machine and setting from its newest record."""

from __future__ import annotations

from pathlib import Path

from benchmarks.pages import latest_provenance, machine, per_machine, write_page
from benchmarks.plots import plot_loss_speed
from common.format import markdown_table, number


def graph_speed_table(records: list[dict], out_dir: Path) -> Path | None:
    """The newest record of each (machine, torch threads, subnormal flushing, memory kept): speed-ups differ between them."""
    records = [r for r in records if r.get("pipeline") == "graph-epoch-speed"]
    if not records:
        return None
    groups = per_machine(records, lambda r: (r["config"].get("flush_denormal", False), r["config"].get("retain_freed_memory", False)))
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
    for (where, threads, flushed, retained), group in groups.items():
        latest = group[-1]
        memory = ", freed memory kept" if retained else ""
        lines += ["", f"## {where}, {threads} torch threads, subnormals {'flushed' if flushed else 'kept'}{memory}",
                  "", f"{latest_provenance(group, 'python -m benchmarks.graph_epoch_speed')}, OMP_WAIT_POLICY "
                  f"{latest['config'].get('omp_wait_policy', 'unrecorded')}, best of {latest['config']['epochs']} epochs.",
                  "", *_graph_speed_rows(latest)]
    return write_page(out_dir, "graph_epoch_speed.md", lines)


def _graph_speed_rows(record: dict) -> list[str]:
    """The table of one graph-epoch-speed record: a column per loop it timed, and the optional measurements
    (GEMM floor, neighbour sums, distinct rows) where every row of the record has them."""
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
    body = []
    for r in record["metrics"]["rows"]:
        cells = [r["dataset"], str(r["graphs"]), str(r["nodes"]), f"{r['released_s']:.3f}", f"{r['released_mask_s']:.3f}"]
        cells += [f"{r[f'{loop}_s']:.3f}" for loop in loops] + [f"{r[f'speedup_{loop}']:.1f}x" for loop in loops]
        cells += [f"{r['gemm_floor_s']:.3f}", f"{r['gemm_gflop']:.1f}", f"{r['max_speedup']:.1f}x"] if floors else []
        cells += [f"{r['neighbour_sum_ms'][way]:.2f}" for way in ("gather_scatter", "csr")] if sums else []
        cells += [f"{r['rows_scored']} ({r['nodes'] / r['rows_scored']:.2f}x fewer)", f"{r['collate_s']:.2f}"] if distinct else []
        body.append(cells)
    return markdown_table(header, body)


def loss_speed_table(records: list[dict], out_dir: Path) -> Path | None:
    """One section per (machine, torch threads), from its newest record; the plot shows the newest record of all."""
    records = [r for r in records if r.get("pipeline") == "loss-speed"]
    if not records:
        return None
    lines = ["# Loss speed (forward + backward, float32)", "",
             "Median of repeated runs after a warm-up; ratio to the first row of each block. One section per machine "
             f"and thread count, from its newest record; loss_speed.png plots the newest record ({machine(records[-1])})."]
    for (where, threads), group in per_machine(records).items():
        rows = group[-1]["metrics"]["rows"]
        lines += ["", f"## {where}, {threads} torch threads", "", f"{latest_provenance(group, 'make bench-loss')}.", ""]
        if not any("peak_mb" in r for r in rows):  # records before the objective rows
            lines += markdown_table(["inputs", "loss", "ms", "ratio"],
                                    [[r["inputs"], r["loss"], number(1000 * r["seconds"]), number(r["ratio"])] for r in rows])
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
                  *markdown_table(["inputs", "loss", "ms", "ratio", "peak MB", "peak, (2B)² matrices"], [
                      [r["inputs"], r["loss"], number(1000 * r["seconds"]), number(r["ratio"]),
                       *((number(r["peak_mb"], 0), number(r["peak_matrices"], 1)) if "peak_mb" in r else ("", None))]
                      for r in rows])]
    plot_loss_speed(records[-1]["metrics"]["rows"], out_dir / "loss_speed.png")
    return write_page(out_dir, "loss_speed.md", lines)

