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
    """Accuracy against beta per data set (its `paper` rows when it has them, else its first setting);
    plain and debiased baselines as horizontal lines."""
    plt = pyplot()
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
