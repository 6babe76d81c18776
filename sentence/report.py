"""The results table, built from run records alone (every cell traces back to one record)."""

from __future__ import annotations

import math
from typing import Any

from common.stats import Score

COLUMNS = ("MR", "CR", "SUBJ", "MPQA", "TREC", "MRPC_acc", "MRPC_f1")
HEADERS = ("MR", "CR", "SUBJ", "MPQA", "TREC", "MRPC acc", "MRPC F1")
ROW_ORDER = ("random", "qt-plain", "qt-debiased", "qt-hard", "minilm", "minilm-plain", "minilm-hard")
ROW_NAMES = {
    "random": "random encoder (quick-thought, untrained)",
    "qt-plain": "quick-thought, plain",
    "qt-debiased": "quick-thought, debiased",
    "qt-hard": "quick-thought, hard",
    "minilm": "all-MiniLM-L6-v2 as shipped",
    "minilm-plain": "all-MiniLM-L6-v2 fine-tuned, plain",
    "minilm-hard": "all-MiniLM-L6-v2 fine-tuned, hard",
}


def _cell(value: Any) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1f}"


def markdown_table(records: list[dict[str, Any]]) -> str:
    """One row per encoder (the latest record of each), profile and hardware of every row stated."""
    latest: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.get("pipeline") == "sentence" and "row" in record.get("config", {}):
            latest[record["config"]["row"]] = record
    rows = sorted(latest, key=lambda r: (ROW_ORDER.index(r) if r in ROW_ORDER else len(ROW_ORDER), r))
    lines = [
        "| encoder | " + " | ".join(HEADERS) + " | val neighbour acc (chance) | profile | train s | eval s | hardware |",
        "|---" * (len(HEADERS) + 6) + "|",
    ]
    for row in rows:
        record = latest[row]
        metrics = record["metrics"]
        neighbour = (f"{metrics['val_neighbour_acc']:.3f} ({metrics['val_neighbour_chance']:.4f})"
                     if "val_neighbour_acc" in metrics else "–")
        hardware = record.get("hardware", {})
        cells = [ROW_NAMES.get(row, row), *(_cell(metrics.get(c)) for c in COLUMNS), neighbour,
                 record["config"].get("profile", "?"), _cell(metrics.get("train_time_s")),
                 _cell(metrics.get("eval_time_s")),
                 f"{hardware.get('cpu', '?')} x{hardware.get('torch_threads', '?')} threads"
                 + (f", {hardware['gpu']}" if hardware.get("gpu") else "")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


TRANSFER = ("MR", "CR", "SUBJ", "MPQA", "TREC", "MRPC_acc")


def scores(records: list[dict[str, Any]], profile: str = "quick") -> list[Score]:
    """The leaderboard's sentence scores: quick-thought rows of ``profile`` by objective, the random encoder as
    untrained; each the mean accuracy of the six transfer tasks (records with fewer tasks are left out)."""
    from common.objectives import from_dict, parse_objective

    out = []
    for r in records:
        config = r.get("config", {})
        if r.get("pipeline") != "sentence" or config.get("profile") != profile or not all(t in r["metrics"] for t in TRANSFER):
            continue
        if config.get("row") == "random":
            label = "untrained"
        elif str(config.get("row", "")).startswith("qt-"):
            objective = from_dict(config["objective"]) if "objective" in config else parse_objective(config["method"])
            label = objective.label()
        else:
            continue
        out.append(Score("sentence", "6 transfer tasks", label, r["seed"], sum(r["metrics"][t] for t in TRANSFER) / 6))
    return out
