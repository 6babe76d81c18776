"""The leaderboard's markdown page and README section, rendered from ``tables/leaderboard.json`` alone (prose and
layout only; every number is computed in ``benchmarks.leaderboard``)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.suites import MODALITIES, STAGE1_SEEDS, TUNED_ROUNDS

HEADING = "# Leaderboard: negative handling across modalities, tuned against tuned"


def _num(value: float | None, signed: bool = True) -> str:
    return "" if value is None else f"{value:+.2f}" if signed else f"{value:.2f}"


def _delta(row: dict) -> str:
    """Δ ± s.e. (n) as the cells show it; the mean alone below two paired seeds."""
    if row["delta"] is None:
        return ""
    return _num(row["delta"]) + (f" ± {row['se']:.2f}" if row["se"] is not None else "") + f" (n={row['n']})"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


def column_section(data: dict, column: dict) -> list[str]:
    """One stage-1 column: the baseline, every configuration's Δ to it, the selections and the MDE."""
    rows = [r for r in data["cells"] if r["column"] == column["id"]]
    rows.sort(key=lambda r: (r["family"], r["label"]))
    seeds = len(column["stage1_seeds"])
    body = [[r["label"] + (" **(selected)**" if r["selected"] else ""), f"`{r['spec']}`", f"{r['temperature']:g}",
             f"{len(r['seeds'])}/{seeds}", _num(r["mean"], signed=False), _delta(r),
             "" if r["p_adjusted"] is None else f"{r['p_adjusted']:.2g}", " ".join(m for m in r["marks"] if m != "S")]
            for r in rows]
    picked = "; ".join(f"{s['family']}: {s['label'] or '—'} ({s['why']})" for s in column["selections"])
    mde = f"{column['mde']:.2f} points" if column["mde"] is not None else "not yet computable"
    baseline = ("the temperature-tuned NT-Xent" if column["baseline_selected"]
                else "NT-Xent at the profile temperature, until its temperature is selected")
    return [f"### {column['modality']}: {column['dataset']}", "",
            f"{column['metric']}; protocol v{column['protocol']}; stage-1 seeds {column['stage1_seeds'][0]}-"
            f"{column['stage1_seeds'][-1]}. Baseline: `{column['baseline']}` ({baseline}), mean "
            f"{_num(column['baseline_mean'], signed=False)}; untrained encoder {_num(column['untrained_delta'])} against "
            f"it. Minimum detectable effect of this column (80% power, Holm's first step over its comparisons): {mde}.",
            "", f"Selections (the rule in `benchmarks.leaderboard.select`): {picked}.", "",
            *_table(["configuration", "spec", "t", "seeds", "mean", "Δ vs baseline ± s.e.", "Holm p", "H"], body), ""]


def claims_section(data: dict) -> list[str]:
    if not data["claims"]:
        lines = ["No tuned round is declared yet: each modality's round is declared in `benchmarks/suites.py` "
                 "(`TUNED_ROUNDS`) once its stage 1 has selected every family, before any of its fresh seeds runs."]
        for modality, code in data["proposed"].items():
            lines += ["", f"- {modality}: " + ("stage 1 not complete yet." if code is None else
                                                "ready to declare:"), *([f"\n```python\n{code}\n```"] if code else [])]
        return lines
    body = [[c["round"], c["column"], c["family"], f"{c['seeds'][0]}-{c['seeds'][-1]}", _delta(c),
             "" if c["p_adjusted"] is None else f"{c['p_adjusted']:.2g}", c["verdict"],
             "" if c["mde"] is None else f"{c['mde']:.2f}"] for c in data["claims"]]
    return _table(["round", "column", "family", "fresh seeds", "Δ vs tuned NT-Xent ± s.e.", "Holm p (whole round)",
                   "verdict", "MDE"], body)


def history_section(data: dict) -> list[str]:
    judged = data["history_claims"]["claims"]
    body = [[c["id"], _delta(c), "" if c["p_adjusted"] is None else f"{c['p_adjusted']:.2g}", c["verdict"]]
            for c in judged]
    return [data["history"] + " NT-Xent ran at one temperature per modality there.", "",
            *_table(["claim", "Δ vs NT-Xent (profile temperature) on its fresh seeds", "Holm p (all rounds)",
                     "verdict"], body)]


def legend() -> list[str]:
    """Per family: what runs, its reference and any deviation from it."""
    from common.objectives import REGISTRY

    rows = [[name, family.summary, getattr(family, "reference", ""), getattr(family, "deviation", "")]
            for name, family in REGISTRY.items() if not family.local_global]
    return ["Families (`python -m benchmarks objectives` lists every parameter and citation):", "",
            *_table(["family", "what runs", "reference code", "deviation from it"], rows)]


def markdown(data: dict, coverage: str) -> list[str]:
    verdicts = [f"- **{m}**: {data['verdicts'][m]}" for m in MODALITIES]
    out = [HEADING, "", f"From {data['provenance']}. Every column is a CPU `quick`-sized protocol (see each "
           "column's metric); the interactive page is [leaderboard.html](leaderboard.html), the numbers "
           "[leaderboard.json](leaderboard.json).", "", "## Verdicts (stage 2: declared claims on fresh seeds)", "",
           *verdicts, "", *claims_section(data), "", "## Stage 1: every family at the same budget", "",
           f"Every family runs four configurations per column (its declared sweep; NT-Xent, DCL and DCLW sweep the "
           "temperature), plus the step beyond a grid edge where its best value lies at one, and each selected "
           "configuration that beats NT-Xent again at NT-Xent's selected temperature (the temperature control). "
           f"Seeds: {', '.join(f'{m} {len(s)}' for m, s in STAGE1_SEEDS.items())}. `H`: the Δ survives Holm over "
           "the column's configurations (stage 1 only selects; claims are judged in stage 2).", "", coverage, ""]
    for column in data["columns"]:
        out += column_section(data, column)
    return [*out, "## History", "", *history_section(data), "", *legend()]


def readme_section(data: dict) -> list[str]:
    """The README's headline: one verdict per modality, its power, and the link to the page."""
    mdes = {c["modality"]: c["mde"] for c in data["columns"] if c["mde"] is not None}
    lines = [f"- **{m}**: {data['verdicts'][m]}" + (f" Stage-1 minimum detectable effect: {mdes[m]:.1f} points."
                                                     if m in mdes else "") for m in MODALITIES]
    return ["Tuned against tuned (every family, NT-Xent included, gets the same tuning budget; claims judged on fresh "
            f"seeds, Holm per modality; {len(TUNED_ROUNDS)} of {len(MODALITIES)} rounds declared so far):", "", *lines,
            "", "The whole board: [tables/leaderboard.md](tables/leaderboard.md), interactive "
            "[tables/leaderboard.html](tables/leaderboard.html), numbers [tables/leaderboard.json](tables/leaderboard.json)."]


def write(records: list[dict], out_dir: Path, pyplot) -> list[tuple[str, str | bytes]]:
    """The leaderboard's files as (name, content): json, md and html; the PNG is drawn to ``out_dir`` directly."""
    from benchmarks.leaderboard import data
    from benchmarks.leaderboard_page import forest_png, html
    from benchmarks.stage1 import done, time_left
    from benchmarks.suites import expand

    board = json.loads(json.dumps(data(records)))  # the page is rendered from exactly what the JSON file holds
    declared = expand("leaderboard", "quick")
    finished = {c.key for c in done(declared, records)}
    per = ", ".join(f"{m} {sum(c.yields.modality == m and c.key in finished for c in declared)}/"
                    f"{sum(c.yields.modality == m for c in declared)}" for m in MODALITIES)
    coverage = (f"Coverage: {len(finished)} of the {len(declared)} declared cells have all their scores ({per}); "
                "`python -m benchmarks run leaderboard` runs the rest. "
                + time_left([c for c in declared if c.key not in finished], records))
    board["coverage"] = coverage
    forest_png(board, out_dir / "leaderboard.png", pyplot)
    return [("leaderboard.json", json.dumps(board, indent=1, sort_keys=True) + "\n"),
            ("leaderboard.md", "\n".join(markdown(board, coverage)) + "\n"), ("leaderboard.html", html(board))]
