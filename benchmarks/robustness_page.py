"""The robustness page (issue 40): the declared design, the columns still waiting for stage 1, the declared tests
in words, the tables of Δ per batch size and per training length, and the plot, rendered from
:func:`benchmarks.robustness.analyse`'s result alone (``tables/robustness.json`` holds exactly that)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.robustness import PROTOCOLS
from common.format import MISSING, markdown_table, signed
from common.io import atomic_write_text


def _ci_cell(d: dict | None) -> str:
    if d is None:
        return MISSING
    if d["ci95"] is None:
        return f"{signed(d['mean'])} (n={d['n']})"
    half = (d["ci95"][1] - d["ci95"][0]) / 2
    return f"{signed(d['mean'])} ± {half:.2f}"


def _level_cell(d: dict | None) -> str:
    if d is None:
        return MISSING
    if d["ci95"] is None:
        return f"{d['mean']:.2f} (n={d['n']})"
    return f"{d['mean']:.2f} [{d['ci95'][0]:.2f}, {d['ci95'][1]:.2f}]"


def markdown(result: dict) -> str:
    """``tables/robustness.md`` from :func:`analyse`'s dict."""
    design = result["design"]
    lines = ["# Where the answer holds: gains along the number of negatives and the training length", "",
             f"Δ = arm − the tuned NT-Xent, paired by seed, in points, ± half its 95% CI. {design['lr_rule']}. "
             f"Tests: {design['slope']}; {design['difference']}; {design['correction']} "
             f"({result['tests_complete']} of {result['tests_declared']} complete).", "",
             f"Arms: {design['arms']}.", "", *design_section(design)]
    if result["waiting"]:
        lines += ["## Waiting for stage 1", "",
                  "These columns wait for stage 1's selections: only their HCL cells (fixed by the design) run "
                  "meanwhile, and nothing of theirs is analysed yet:", "",
                  *[f"- {w['name']}: {w['why']}." for w in result["waiting"]], ""]
    for column in result["columns"]:
        lines += [f"## {column['name']}", ""]
        untrained = column["untrained"]
        lines += [f"Levels (mean [95% CI], %): the tuned baseline is the {column['baseline']['label']} row of the "
                  "absolute tables; the untrained encoder "
                  + (_level_cell(untrained) if untrained else "is not recorded") + f". Seeds {column['seeds']}.", ""]
        for axis, title in (("negatives", "Δ per batch"), ("length", "Δ per training length")):
            a = column["axes"][axis]
            unit = "batch" if axis == "negatives" else a["unit"]
            lines += [f"{title} ({unit}):", ""]
            header = ["arm", *[f"{unit} {p}" for p in a["points"]]]
            rows = [[arm, *map(_ci_cell, deltas)] for arm, deltas in a["delta"].items()]
            lines += [*markdown_table(header, rows), ""]
            lines += [f"Absolute ({unit}; mean [95% CI], %):", ""]
            rows = [[arm, *map(_level_cell, values)] for arm, values in a["absolute"].items()]
            lines += [*markdown_table(header, rows), ""]
        lines += ["Tests:", "", *[f"- {t['words']}." for t in column["tests"]], ""]
    return "\n".join(lines)


def design_section(design: dict) -> list[str]:
    """The declared runs of every column: each batch with its learning rate and length, then the length axis."""
    rows = [[modality, str(batch), f"{lr:.3g}", f"{length} {design['length_units'][modality]}",
             f"{design['seeds'][modality][0]}-{design['seeds'][modality][-1]}"]
            for modality, batches in design["batches"].items()
            for batch, lr, length in zip(batches, design["lrs"][modality], design["runs"][modality], strict=True)]
    along = "; ".join(f"{m} at {', '.join(map(str, n))} {design['length_units'][m]}"
                      for m, n in design["lengths"].items())
    return ["Design: the number of negatives (every arm at each batch, scored at the end of its run):", "",
            *markdown_table(["modality", "batch", "Adam lr", "run", "seeds"], rows), "",
            f"Training length: every arm at its profile's batch, one run scored along the way ({along}).", ""]


def write(result: dict, out_dir: Path, pyplot) -> Path:
    """``robustness.json``, the page rendered from that JSON as read back, and the plot, into ``out_dir``."""
    text = json.dumps(result, indent=1) + "\n"
    shown = json.loads(text)
    atomic_write_text(out_dir / "robustness.json", text)
    atomic_write_text(out_dir / "robustness.md", markdown(shown))
    plot(shown, pyplot, out_dir / "robustness.png")
    return out_dir / "robustness.md"


def plot(result: dict, pyplot, path: str | Path) -> None:
    """``tables/robustness.png``: per column, Δ ± 95% CI against the batch (log2 axis) and against the length."""
    columns = result["columns"]
    fig, axes = pyplot.subplots(max(1, len(columns)), 2, squeeze=False, figsize=(9, 2.6 * max(1, len(columns))))
    for row, column in zip(axes, columns, strict=False):
        for ax, axis in zip(row, ("negatives", "length"), strict=True):
            a = column["axes"][axis]
            for offset, (arm, deltas) in enumerate(a["delta"].items()):
                shown = [(p, d) for p, d in zip(a["points"], deltas, strict=True) if d is not None]
                if not shown:
                    continue
                xs = [p * 2 ** (0.04 * (offset - 1)) for p, _ in shown]  # a small shift keeps the bars apart
                ys = [d["mean"] for _, d in shown]
                err = [[d["mean"] - d["ci95"][0] if d["ci95"] else 0 for _, d in shown],
                       [d["ci95"][1] - d["mean"] if d["ci95"] else 0 for _, d in shown]]
                ax.errorbar(xs, ys, yerr=err, marker="o", ms=3, lw=1, capsize=2, label=arm)
            ax.axhline(0, color="#1a1a1a", lw=0.8, ls="--")
            ax.set_xscale("log", base=2)
            ax.set_xticks(a["points"], [str(p) for p in a["points"]])
            ax.tick_params(labelsize=6)
            ax.set_xlabel("batch (log2)" if axis == "negatives" else a["unit"], fontsize=7)
            ax.set_ylabel("Δ vs NT-Xent (points)", fontsize=7)
            profile = PROTOCOLS[column["modality"]]
            at = profile.batch if axis == "negatives" else profile.length
            base = dict(zip(a["points"], a["absolute"].get(column["baseline"]["label"], []), strict=False)).get(at)
            level = base["mean"] if base else None
            untrained = column["untrained"]["mean"] if column["untrained"] else None
            note = f"NT-Xent at {at}: " + (f"{level:.1f}%" if level is not None else MISSING)
            note += ", untrained " + (f"{untrained:.1f}%" if untrained is not None else MISSING)
            ax.set_title(f"{column['name']}: {note}", fontsize=7)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=5)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    pyplot.close(fig)
