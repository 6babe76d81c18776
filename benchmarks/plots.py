"""The pages' figures, drawn with matplotlib's file-only Agg backend (no display here or in CI)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path


def pyplot():
    """matplotlib's pyplot on the Agg backend, imported only when a figure is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_loss_speed(rows: list[dict], path: Path) -> None:
    """Forward+backward time against batch size, one line per loss (the ``B=...`` rows of a loss-speed record)."""
    plt = pyplot()
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


def plot_graph_betas(rows: list[dict], path: Path) -> None:
    """Accuracy against beta per data set (in the setting that ran its hard JSD grid, the paper's if any), one curve
    per estimator convention of the hard JSD objective; InfoGraph, debiased and untrained as horizontal lines.
    Rows are read by their objective's spec, never by their label text."""
    from common.objectives import parse_objective

    plt = pyplot()
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    fig, axes = plt.subplots(1, len(datasets), figsize=(3 * len(datasets), 3), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        # The reproduction's own setting: the first that ran the hard JSD grid, the paper protocol's if any.
        settings = list(dict.fromkeys(r["profile"] for r in rows if r["dataset"] == dataset
                                      and r["spec"].startswith("jsd:") and "beta=0," not in r["spec"]))
        settings = settings or [r["profile"] for r in rows if r["dataset"] == dataset]
        setting = next((s for s in settings if s.startswith("paper")), settings[0])
        # Only the JSD rows are parsed: another family's row may hold a retired parameter (history).
        mine = [(r, dict(parse_objective(r["spec"]).params) if r["spec"] else None) for r in rows
                if r["dataset"] == dataset and r["profile"] == setting and (not r["spec"] or r["spec"].startswith("jsd:"))]
        jsd = [(r, p) for r, p in mine if p is not None]
        for convention, marker in (("paper", "o"), ("reference", "s")):
            points = sorted((p["beta"], r["mean"]) for r, p in jsd if p["beta"] > 0 and p["convention"] == convention)
            if points:
                ax.plot(*zip(*points, strict=True), marker=marker, label=f"hard, {convention} convention")
        for r, p in mine:
            if p is None or p["beta"] == 0:
                colour = "grey" if p is None else "k" if p["tau_plus"] == 0 else (
                    "tab:green" if p["convention"] == "paper" else "tab:olive")
                ax.axhline(r["mean"], linestyle=":" if p is None else "--", linewidth=1, color=colour, label=r["method"])
        ax.set(xlabel="beta", ylabel="accuracy %")
        ax.set_title(f"{dataset}\n{setting}", fontsize=8)
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
