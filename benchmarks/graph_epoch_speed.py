"""Seconds per InfoGraph training epoch: the released training loop against ours.

The released loop re-collates every mini-batch each epoch (a non-shuffling PyG
DataLoader), runs the encoder through PyG's ``GINConv`` (gather-then-scatter neighbour sums)
and builds the node-by-graph masks with a Python loop over nodes. Ours collates the fixed
batches and their sparse adjacency once, keeps batch-norm gradients contiguous, needs
no masks for the plain objective and scores each class of nodes the encoder cannot tell
apart once (graph.wl); "every-node" is ours scoring every node, and optionally the step is
also compiled with torch.compile. Same weights, same data, same optimiser;
the loss value of the first batch is printed for each loop. A GEMM floor (benchmarks.gemm_floor:
the matrix multiplies of one of our epochs alone) bounds what rewriting the rest of our epoch could add. Appends a run record to
tables/records/graph_speed.jsonl that ``make tables`` renders as tables/graph_epoch_speed.md.
Subnormal floats are flushed and freed memory is kept in the process for all loops alike
(``--no-flush-denormal``, ``--no-retain-memory``), so the loops differ only in their code.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from common.cli import Parser, at_least, run_main
from common.io import check_output_file

RECORDS = Path(__file__).resolve().parent.parent / "tables" / "records" / "graph_speed.jsonl"


def neighbour_sum_ms(batch, width: int = 32, repeats: int = 5) -> dict[str, float]:
    """Best forward+backward time of one layer's neighbour sum on ``batch``: PyG's gather-scatter vs our CSR product."""
    import torch
    from torch_geometric.utils import scatter

    source, target = batch.edge_index
    x = torch.randn(batch.num_nodes, width, requires_grad=True)
    grad = torch.randn(batch.num_nodes, width)
    ways = {"gather_scatter": lambda: scatter(x.index_select(0, source), target, 0, dim_size=batch.num_nodes, reduce="sum"),
            "csr": lambda: batch.neighbours @ x}
    best = {}
    for name, way in ways.items():
        times = []
        for _ in range(repeats + 1):
            x.grad = None
            start = time.perf_counter()
            way().backward(grad)
            times.append(time.perf_counter() - start)
        best[name] = 1e3 * min(times[1:])
    return best


def our_epoch(step, optimizer, batches) -> float:
    from graph.train import train_epoch

    start = time.perf_counter()
    train_epoch(step, optimizer, batches)
    return time.perf_counter() - start


def every_node(step):
    """Our step scoring every node: the distinct rows of the batch are ignored."""
    return lambda x, neighbours, batch, num_graphs, rows, counts: step(x, neighbours, batch, num_graphs)


def measure(name: str, epochs: int, loops: list[str]) -> dict:
    """Best epoch time of each loop, alternating loops epoch by epoch so all see the same background load."""
    import torch

    from benchmarks.gemm_floor import record_gemms, replay_seconds
    from benchmarks.released import loop_mask_local_global, released_convs, released_epoch, released_forward
    from common.objectives import make_objective
    from graph.data import load_tu
    from graph.model import InfoGraph
    from graph.train import step_loss

    data = load_tu(name)
    start = time.perf_counter()
    batches = data.batches(128, seed=0, distinct_depth=3)  # "every-node" ignores the distinct rows
    collate_s = time.perf_counter() - start
    order = [data.graphs[i] for i in data.order(seed=0)]  # the same graph order for every loop
    check = batches[0]
    runners = {}
    for label in loops:
        torch.manual_seed(0)
        model = InfoGraph(data.num_features)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
        # the released loop's "step" is its GINConv layers; ours the plain JSD objective, as released
        if label == "released":
            step = released_convs(model)
        else:
            step = step_loss(model, make_objective("jsd"), compile=label == "compiled")
            step = every_node(step) if label == "every-node" else step
        with torch.no_grad():
            if label == "released":
                loss = loop_mask_local_global(*released_forward(model, step, check), check.batch)
            else:
                loss = step(check.x, check.neighbours, check.batch, check.num_graphs, check.rows, check.row_counts)
            print(f"{name:14s} {label:10s} first-batch loss {loss.item():.6f}", flush=True)
        runners[label] = (step, model, optimizer)
    seconds: dict[str, list[float]] = {label: [] for label in loops}
    mask_seconds = []
    warmup_seconds = {}
    for round_ in range(epochs + 1):
        for label, (step, model, optimizer) in runners.items():
            if label == "released":
                took, masks = released_epoch(model, step, optimizer, order, 128)
                mask_seconds.append(masks)
            else:
                took = our_epoch(step, optimizer, batches)
            if round_:
                seconds[label].append(took)
            else:
                warmup_seconds[label] = took  # includes compilation for "compiled"
    best = {label: min(times) for label, times in seconds.items()}
    step, _, optimizer = runners["ours"]
    gemms = record_gemms(lambda: our_epoch(step, optimizer, batches))
    floor = replay_seconds(gemms)
    row = {"dataset": name, "graphs": len(data.graphs), "nodes": sum(g.num_nodes for g in data.graphs),
           "batches": len(batches), **{f"{label}_s": best[label] for label in loops},
           "warmup_s": warmup_seconds, "released_mask_s": min(mask_seconds[1:]),
           "gemm_floor_s": floor, "gemm_gflop": sum(g.flops for g in gemms) / 1e9, "max_speedup": best["released"] / floor,
           "neighbour_sum_ms": neighbour_sum_ms(check), "collate_s": collate_s,
           "rows_scored": sum(len(b.rows) for b in batches)}
    for label in loops[1:]:
        row[f"speedup_{label}"] = best["released"] / best[label]
    print(f"{name:14s} " + ", ".join(f"{label} {best[label]:.3f} s/epoch" for label in loops)
          + f", GEMM floor {floor:.3f} s ({row['gemm_gflop']:.1f} GFLOP)", flush=True)
    return row


def main(argv: list[str] | None = None) -> None:
    p = Parser(prog="python -m benchmarks.graph_epoch_speed", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="MUTAG,PROTEINS,REDDIT-BINARY", help="comma-separated TU data sets")
    p.add_argument("--epochs", type=at_least(1), default=2, help="timed epochs per loop, alternating (after one warm-up epoch each)")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile loop (it needs a C++ compiler)")
    p.add_argument("--flush-denormal", action=argparse.BooleanOptionalAction, default=True,
                   help="flush subnormal floats for every loop, as `python -m graph` does by default (default: on)")
    p.add_argument("--retain-memory", action=argparse.BooleanOptionalAction, default=True,
                   help="keep freed memory in the process for every loop, as `python -m graph` does by default (default: on)")
    p.add_argument("--records", type=Path, default=RECORDS, help="JSONL file the run record is appended to")
    args = p.parse_args(argv)
    check_output_file(args.records, "--records")
    from common.allocator import retain_freed_memory
    from common.records import append_record, make_record
    from common.subnormal import flush_denormal

    started = time.perf_counter()
    loops = ["released", "ours", "every-node"] + ([] if args.no_compile else ["compiled"])
    retained = args.retain_memory and retain_freed_memory()
    with flush_denormal(args.flush_denormal) as flushing:  # process-wide: the worker threads keep the mode they start with
        rows = [measure(name, args.epochs, loops) for name in args.datasets.split(",")]
    config = {"datasets": args.datasets, "epochs": args.epochs, "loops": loops, "batch_size": 128, "model": "GIN 3x32",
              "dtype": "float32", "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
              "flush_denormal": flushing, "retain_freed_memory": retained}
    append_record(args.records, make_record(pipeline="graph-epoch-speed", config=config, metrics={"rows": rows}, seed=0,
                                            wall_time_s=time.perf_counter() - started))
    print(f"appended a record to {args.records}; `make tables` renders tables/graph_epoch_speed.md")


if __name__ == "__main__":
    run_main(main)
