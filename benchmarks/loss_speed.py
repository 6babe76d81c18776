"""Forward+backward time of the contrastive losses and of the graph objective.

Compares, at equal inputs: every registered contrastive objective by name against our NT-Xent
path (with its peak memory at the largest B, and the order statistics FNC, ring and MoCHi use
against a full sort); NT-Xent as cross-entropy over the masked similarity matrix
(the plain baseline), our debiased and hard losses, and a naive transcription of the
published estimator (raw ``exp``, a mask built with a Python loop, ``masked_select``);
and the local-global graph objective against its Python-loop-mask form. Appends a run
record (with the hardware) that ``make tables`` renders as ``tables/loss_speed.md``.
Run: ``make bench-loss``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from common.cli import Parser, at_least, run_main
from common.errors import UserError
from common.io import check_output_file
from common.settings import comma_list

if TYPE_CHECKING:  # torch is imported where it runs, so that --help answers at once
    import torch

RECORDS = Path(__file__).resolve().parent.parent / "tables" / "records" / "loss_speed.jsonl"


def nt_xent_cross_entropy(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    import torch
    import torch.nn.functional as F

    views = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = (views @ views.T / temperature).fill_diagonal_(float("-inf"))
    b = z1.shape[0]
    targets = torch.cat([torch.arange(b, 2 * b), torch.arange(b)])
    return F.cross_entropy(logits, targets)


def time_fwd_bwd(fn: Callable[..., torch.Tensor], inputs: list[torch.Tensor], repeats: int) -> float:
    """Median seconds of forward+backward after one warm-up call."""
    times = []
    for i in range(repeats + 1):
        for x in inputs:
            x.grad = None
        start = time.perf_counter()
        fn(*inputs).backward()
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def _memory_status(key: str) -> float:
    """A ``/proc/self/status`` field in MiB (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    raise OSError(f"no {key} in /proc/self/status")


def peak_memory_mb(fn: Callable[..., torch.Tensor], inputs: list[torch.Tensor]) -> float | None:
    """Rise of the peak resident memory over one forward+backward (VmHWM reset first), in MiB; None off Linux.

    torch's CPU allocator hands large blocks to glibc; with :func:`common.allocator.mmap_threshold`
    (set by ``main`` for :func:`peak_rows`) each is mapped and unmapped, so the resident high-water mark follows the
    tensors alive at once (without it glibc reuses freed memory and the rise depends on what ran before).
    """
    try:
        for x in inputs:
            x.grad = None
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # reset VmHWM to the current resident size
        before = _memory_status("VmRSS:")
        fn(*inputs).backward()
        return _memory_status("VmHWM:") - before
    except OSError:
        return None


def objective_rows(batches: list[int], dim: int, repeats: int) -> list[dict]:
    """Every registered contrastive objective at its defaults, by name, against our NT-Xent path; then the order
    statistics the band/top-k objectives need against a full sort (peak memory: :func:`peak_rows`)."""
    import torch

    from common.objectives import REGISTRY, build, make_objective

    names = ["ntxent", *(n for n, f in REGISTRY.items() if not f.local_global and n != "ntxent")]
    rows = []
    for b in batches:
        z = [torch.randn(b, dim, requires_grad=True) for _ in range(2)]
        losses = {name: build(make_objective(name), temperature=0.5) for name in names}
        # Round robin: each repeat times every objective once, so a busy machine slows them alike.
        times: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(repeats if b < 4096 else max(1, repeats // 2)):
            for name, loss_fn in losses.items():
                times[name].append(time_fwd_bwd(loss_fn, z, 1))
        base = statistics.median(times["ntxent"])
        for name, loss_fn in losses.items():
            objective, seconds = loss_fn.objective, statistics.median(times[name])
            rows.append({"inputs": f"objectives: B={b}, d={dim}", "loss": str(objective), "seconds": seconds,
                         "ratio": seconds / base})
            print(f"B={b:5d} {str(objective):55s} {1000 * seconds:9.2f} ms  x{seconds / base:.2f}", flush=True)
    b = max(batches)
    logits = torch.randn(2 * b, 2 * b)
    k = 16  # MoCHi's num_hard default; FNC takes k = 1 by default
    ways = {"full row sort (values and indices)": lambda: logits.sort(dim=1),
            "topk(16), unsorted (FNC, MoCHi)": lambda: logits.topk(k, dim=1, sorted=False),
            "topk(16), sorted": lambda: logits.topk(k, dim=1),
            "2 kthvalue (a ring band's edges)": lambda: (logits.kthvalue(b, dim=1), logits.kthvalue(2 * b - 1, dim=1)),
            "kthvalue + amax (ring, upper = 1)": lambda: (logits.kthvalue(b, dim=1), logits.amax(dim=1))}
    base = None
    for name, way in ways.items():
        times = []
        for i in range(max(2, repeats // 2) + 1):
            start = time.perf_counter()
            way()
            if i:
                times.append(time.perf_counter() - start)
        seconds = statistics.median(times)
        base = base or seconds
        rows.append({"inputs": f"selection: ({2 * b} x {2 * b}) float32", "loss": name, "seconds": seconds,
                     "ratio": seconds / base})
        print(f"selection {name:45s} {1000 * seconds:9.2f} ms  x{seconds / base:.2f}", flush=True)
    return rows


def peak_rows(b: int, dim: int) -> list[dict]:
    """Peak memory of every registered objective at batch ``b``, measured first in the process with every block of
    64 KiB or more mmapped (:func:`common.allocator.mmap_threshold`), so each peak is the live tensors' and not what
    glibc kept from earlier calls; ``main`` then serves blocks as a long-running process does before it times."""
    import torch

    from common.objectives import REGISTRY, build, make_objective

    z = [torch.randn(b, dim, requires_grad=True) for _ in range(2)]
    rows = []
    for name in ["ntxent", *(n for n, f in REGISTRY.items() if not f.local_global and n != "ntxent")]:
        loss_fn = build(make_objective(name), temperature=0.5)
        peak_memory_mb(loss_fn, z)  # warm-up
        peak = peak_memory_mb(loss_fn, z)
        if peak is not None:
            rows.append({"loss": str(loss_fn.objective), "peak_mb": peak, "peak_matrices": peak * 2**20 / ((2 * b) ** 2 * 4)})
            print(f"B={b:5d} {rows[-1]['loss']:55s} peak {peak:.0f} MB = {rows[-1]['peak_matrices']:.2f} (2B)^2 float32",
                  flush=True)
    return rows


def resnet_step_share(batch: int, repeats: int) -> list[tuple[str, str, float, float]]:
    """One SimCLR ResNet-18 (CIFAR stem) training step per registered objective, and each loss's part in it.

    A step is seconds while the losses differ by milliseconds, so besides the measured step (round
    robin, the fastest of ``repeats``, noisy on a shared machine) each row gives the loss alone
    (fwd+bwd on the step's projections) and the step ratio it implies: NT-Xent's step plus the
    objective's extra loss time, over NT-Xent's step.
    """
    import torch

    from common.objectives import REGISTRY, build, make_objective
    from image.model import SimCLRModel

    model = SimCLRModel("resnet18")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    views = torch.randn(2 * batch, 3, 32, 32)
    projections = [torch.randn(batch, 128, requires_grad=True) for _ in range(2)]
    names = ["ntxent", *(n for n, f in REGISTRY.items() if not f.local_global and n != "ntxent")]
    losses = {name: build(make_objective(name), temperature=0.5) for name in names}

    def step(loss_fn) -> float:
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        _, z = model(views)
        loss_fn(*z.chunk(2)).backward()
        optimizer.step()
        return time.perf_counter() - start

    step(losses["ntxent"])  # warm-up
    steps: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(repeats):
        for name, loss_fn in losses.items():
            steps[name].append(step(loss_fn))
    alone = {name: time_fwd_bwd(loss_fn, projections, 5) for name, loss_fn in losses.items()}
    label = f"ResNet-18 step, 2x{batch} images 32x32"
    base = min(steps["ntxent"])
    rows = []
    for name, loss_fn in losses.items():
        spec, measured = str(loss_fn.objective), min(steps[name])
        implied = (base + alone[name] - alone["ntxent"]) / base
        rows += [(label, f"full step with {spec}", measured, measured / base),
                 (label, f"{spec} loss alone (fwd+bwd); implied step ratio {implied:.4f}", alone[name], alone[name] / base)]
        print(f"{label}: {spec:55s} step {measured:.2f} s (x{measured / base:.3f}), loss alone {1000 * alone[name]:.1f} ms "
              f"= {100 * alone[name] / base:.2f}% of NT-Xent's step, implied step x{implied:.4f}", flush=True)
    return rows


def check_batches(batches: list[int], step_batch: int) -> None:
    """``UserError`` before any work when a registered objective cannot run at its defaults on one of the batches."""
    from common.objectives import REGISTRY, check_negatives, make_objective

    counts = [2 * b - 2 for b in [*batches, *([step_batch] if step_batch else [])]]
    for name in REGISTRY:
        try:
            check_negatives(make_objective(name), counts, temperature=0.5)
        except ValueError as err:
            raise UserError(f"--batches/--step-batch: {err}") from None


def main(argv: list[str] | None = None) -> None:
    p = Parser(prog="python -m benchmarks.loss_speed", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", type=comma_list(at_least(2), "batch sizes"), default=[256, 1024, 4096],
                   help="comma-separated two-view batch sizes B (2B anchors; default 256,1024,4096)")
    p.add_argument("--dim", type=at_least(1), default=128, help="embedding width (default 128)")
    p.add_argument("--repeats", type=at_least(1), default=5, help="timed runs per row, after a warm-up (default 5)")
    p.add_argument("--records", type=Path, default=RECORDS, help="JSONL file the run record is appended to")
    p.add_argument("--step-batch", type=at_least(0), default=64,
                   help="images per view for the ResNet-18 training-step share (0 = skip; the paper uses 256)")
    args = p.parse_args(argv)
    check_output_file(args.records, "--records")
    check_batches(args.batches, args.step_batch)
    import torch

    from benchmarks.released import loop_mask_local_global, loop_masks, naive_published
    from common.allocator import mmap_threshold
    from common.local_global import local_global_loss
    from common.losses import hcl_loss
    from common.records import append_record, make_record

    exact_peaks = mmap_threshold(64 * 1024)
    peaks = {row["loss"]: row for row in peak_rows(max(args.batches), args.dim)}
    mmap_threshold(32 * 2**20)  # the timings: blocks reused as in a long-running process
    started = time.perf_counter()
    torch.manual_seed(0)
    rows = []
    losses = {
        "NT-Xent (cross-entropy)": nt_xent_cross_entropy,
        "ours, NT-Xent (tau+=0, beta=0)": lambda a, b: hcl_loss(a, b, tau_plus=0.0, beta=0.0),
        "ours, debiased (tau+=0.1)": lambda a, b: hcl_loss(a, b, tau_plus=0.1, beta=0.0),
        "ours, hard (tau+=0.1, beta=1)": lambda a, b: hcl_loss(a, b, tau_plus=0.1, beta=1.0),
        "naive published hard (raw exp, loop mask)": naive_published,
    }
    for b in args.batches:
        z = [torch.randn(b, args.dim, requires_grad=True) for _ in range(2)]
        base = None
        for name, fn in losses.items():
            seconds = time_fwd_bwd(fn, z, args.repeats)
            base = base or seconds
            rows.append((f"B={b}, d={args.dim}", name, seconds, seconds / base))
            print(f"B={b:5d} {name:45s} {1000 * seconds:9.2f} ms  x{seconds / base:.2f}", flush=True)

    rows += [(r["inputs"], r["loss"], r["seconds"], r["ratio"],
              r | (peaks.get(r["loss"], {}) if r["inputs"] == f"objectives: B={max(args.batches)}, d={args.dim}" else {}))
             for r in objective_rows(args.batches, args.dim, args.repeats)]

    # Graph objective on a REDDIT-BINARY-sized batch: 128 graphs, ~430 nodes each, 96-d embeddings.
    graphs, nodes = 128, 55_000
    batch = torch.sort(torch.randint(0, graphs, (nodes,))).values
    local = torch.randn(nodes, 96, requires_grad=True)
    graph = torch.randn(graphs, 96, requires_grad=True)
    masks = loop_masks(batch, graphs)
    hard = {"tau_plus": 0.5, "beta": 1.0}
    timed = {
        "loop-mask InfoGraph JSD": lambda a, g: loop_mask_local_global(a, g, batch),
        "ours, InfoGraph JSD": lambda a, g: local_global_loss(a, g, batch),
        "ours, hard (tau+=0.5, beta=1)": lambda a, g: local_global_loss(a, g, batch, **hard),
        "released hard arithmetic, masks given": lambda a, g: loop_mask_local_global(a, g, batch, masks, **hard),
        "ours, hard [reference] (tau+=0.5, beta=1)": lambda a, g: local_global_loss(a, g, batch, **hard, convention="reference"),
    }
    base = None
    for name, fn in timed.items():
        seconds = time_fwd_bwd(fn, [local, graph], max(1, args.repeats // 2) if name.startswith("loop") else args.repeats)
        base = base or seconds
        rows.append((f"graph: {graphs} graphs, {nodes} nodes", name, seconds, seconds / base))
        print(f"graph {name:45s} {1000 * seconds:9.2f} ms  x{seconds / base:.3f}", flush=True)

    if args.step_batch:
        rows += resnet_step_share(args.step_batch, max(2, args.repeats // 2))

    metrics = {"rows": [row[4] if len(row) > 4 else {"inputs": row[0], "loss": row[1], "seconds": row[2], "ratio": row[3]}
                        for row in rows]}
    config = {"peak_memory": "VmHWM rise, every block of 64 KiB or more mmapped" if exact_peaks else "VmHWM rise",
              "batches": ",".join(map(str, args.batches)), "dim": args.dim, "repeats": args.repeats, "step_batch": args.step_batch}
    append_record(args.records, make_record(pipeline="loss-speed", config=config, metrics=metrics, seed=0,
                                            wall_time_s=time.perf_counter() - started))
    print(f"appended a record to {args.records}; `make tables` renders tables/loss_speed.md")


if __name__ == "__main__":
    run_main(main)
