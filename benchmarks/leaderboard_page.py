"""The leaderboard as one static page and a ranked forest plot, both drawn from `tables/leaderboard.json`.

The page opens from disk with no server and no network (inline CSS and JS, inline SVG), so a reader can mail it or
open it offline; everything is rendered here in Python and the script only switches tabs, sorts and filters.
"""

from __future__ import annotations

import math
from html import escape
from pathlib import Path

from common.format import number, signed

# Okabe-Ito colours: distinguishable under the common colour-vision deficiencies, and dark enough on white.
BLUE, VERMILLION, SKY, INK = "#0072B2", "#D55E00", "#56B4E9", "#1a1a1a"
ROW, LEFT, PLOT, RIGHT = 20, 190, 380, 190  # forest plot: row height, label, axis and value widths in px

CSS = f"""
body{{font:15px/1.45 system-ui,sans-serif;color:{INK};margin:0 auto;max-width:1240px;padding:0 16px 40px}}
[hidden]{{display:none!important}}
[role=tablist]{{display:flex;gap:4px;border-bottom:2px solid {BLUE};margin-top:12px}}
[role=tab]{{font:inherit;padding:6px 16px;border:1px solid {BLUE};border-bottom:0;background:#fff;color:{BLUE};
 border-radius:6px 6px 0 0;cursor:pointer}}
[role=tab][aria-selected=true]{{background:{BLUE};color:#fff;font-weight:600}}
.verdict{{font-size:1.1em;border-left:4px solid {VERMILLION};padding:4px 12px;background:#fdf3ec}}
.scroll{{overflow-x:auto}} table{{border-collapse:collapse;margin:6px 0 12px;font-size:13px}}
th,td{{border:1px solid #bbb;padding:3px 7px;text-align:left;vertical-align:top}} td.n{{text-align:right;
 font-variant-numeric:tabular-nums;white-space:nowrap}}
th{{background:#eef4f9}} th button{{font:inherit;font-weight:600;border:0;background:none;color:{INK};cursor:pointer;
 padding:0}} th[aria-sort=ascending] button::after{{content:" \\25B2"}} th[aria-sort=descending] button::after{{content:" \\25BC"}}
tr.selected td:first-child{{font-weight:700;border-left:4px solid {VERMILLION}}}
code{{font-size:12px;white-space:pre-wrap;word-break:break-all}} details summary{{cursor:pointer;color:{BLUE}}}
fieldset{{border:1px solid #bbb;display:inline-block;margin:4px 0}} fieldset label{{margin-right:12px}}
.meta{{color:#333;font-size:13px}} svg text{{font:12px system-ui,sans-serif;fill:{INK}}}
"""

# Tabs (arrow keys move between them), numeric-aware sorting (empty cells last both ways), family filter per column.
JS = """
const tabs = [...document.querySelectorAll('[role=tab]')];
function select(tab) {
  for (const t of tabs) {
    const on = t === tab;
    t.setAttribute('aria-selected', String(on)); t.tabIndex = on ? 0 : -1;
    document.getElementById(t.getAttribute('aria-controls')).hidden = !on;
  }
}
tabs.forEach((tab, i) => {
  tab.addEventListener('click', () => select(tab));
  tab.addEventListener('keydown', e => {
    const step = {ArrowRight: 1, ArrowLeft: -1}[e.key];
    if (step) { const next = tabs[(i + step + tabs.length) % tabs.length]; select(next); next.focus(); }
  });
});
if (tabs.length) select(tabs[0]);
for (const button of document.querySelectorAll('table.sortable th button')) {
  button.addEventListener('click', () => {
    const th = button.closest('th'), table = th.closest('table');
    const index = [...th.parentNode.children].indexOf(th);
    const dir = th.getAttribute('aria-sort') === 'ascending' ? -1 : 1;
    for (const h of table.querySelectorAll('th')) h.removeAttribute('aria-sort');
    th.setAttribute('aria-sort', dir > 0 ? 'ascending' : 'descending');
    const key = row => row.cells[index].dataset.v ?? row.cells[index].textContent.trim();
    const rows = [...table.tBodies[0].rows].sort((a, b) => {
      const x = key(a), y = key(b);
      if (x === '' || y === '') return (x === '') - (y === '');
      const nx = Number(x), ny = Number(y);
      return dir * (Number.isNaN(nx) || Number.isNaN(ny) ? x.localeCompare(y) : nx - ny);
    });
    table.tBodies[0].append(...rows);
  });
}
for (const set of document.querySelectorAll('fieldset.families')) {
  set.addEventListener('change', () => {
    const shown = new Set([...set.querySelectorAll('input:checked')].map(i => i.value));
    for (const el of set.closest('section').querySelectorAll('[data-family]'))
      el.toggleAttribute('hidden', !shown.has(el.dataset.family));
  });
}
"""


def interval(ci: list[float] | None) -> str:
    """A confidence interval of a difference, both ends signed."""
    return "" if not ci else f"[{signed(ci[0])}, {signed(ci[1])}]"


def pvalue(p: float | None) -> str:
    return "" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def modality_of(column: str) -> str:
    """Claims name a column id or a pooled one ("graph:mean of the 6 data sets"); the modality precedes the colon."""
    return column.split(":")[0]


def _reproduce(row: dict) -> str:
    """Spec, seeds, per-seed scores and the command, folded away so the table stays one line per row."""
    scores = row.get("scores") or {}
    base = row.get("baseline_scores") or {}
    per_seed = ", ".join(f"{s}: {v:.2f}" + (f" (baseline {base[s]:.2f})" if s in base else "") for s, v in scores.items())
    return (f"<details><summary>spec &amp; command</summary><div>spec <code>{escape(row.get('spec') or '')}</code></div>"
            f"<div>seeds {escape(', '.join(map(str, row.get('seeds') or [])))}</div>"
            f"<div>scores {escape(per_seed)}</div><div><code>{escape(row.get('command') or '')}</code></div></details>")


def _table(headers: list[str], rows: list[list[tuple[str, float | str | None]]], attrs: list[str]) -> str:
    """A sortable table; a cell is (shown text, sort value); a sort value marks a right-aligned number column."""
    head = "".join(f'<th scope="col"><button type="button">{escape(h)}</button></th>' for h in headers)
    body = []
    for cells, attr in zip(rows, attrs, strict=True):
        tds = "".join(f"<td>{text}</td>" if v == "text" else
                      f'<td class="n" data-v="{"" if v is None else v}">{escape(text)}</td>' for text, v in cells)
        body.append(f"<tr{attr}>{tds}</tr>")
    return (f'<div class="scroll"><table class="sortable"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _ticks(low: float, high: float) -> list[float]:
    """At most about six round ticks (steps of 1, 2 or 5 times a power of ten) across [low, high]."""
    raw = (high - low) / 5
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [i * step for i in range(math.ceil(low / step), math.floor(high / step) + 1)]


def _extent(cells: list[dict], mde: float | None) -> tuple[float, float]:
    """Every CI, the MDE band and zero in view, with a little margin."""
    flat = [0.0, *(v for c in cells for v in (c["ci95"] or [c["delta"]])), *([-mde, mde] if mde else [])]
    low, high = min(flat), max(flat)
    pad = 0.06 * (high - low) or 1.0
    return low - pad, high + pad


def ranked(cells: list[dict]) -> list[dict]:
    return sorted((c for c in cells if c.get("delta") is not None), key=lambda c: -c["delta"])


def forest_svg(column: dict, cells: list[dict]) -> str:
    """Δ and its 95% CI per cell, best first; shaded ±MDE band, zero line; vermillion diamonds = selected."""
    rows = ranked(cells)
    low, high = _extent(rows, column.get("mde"))

    def x(v: float) -> float:
        return round(LEFT + (v - low) / (high - low) * PLOT, 1)

    height = ROW * len(rows) + 44
    title = f"Forest plot, {column['id']}: paired difference to {column.get('baseline', '')} with 95% CI"
    parts = [f'<svg role="img" width="{LEFT + PLOT + RIGHT}" height="{height}" aria-label="{escape(title)}">'
             f"<title>{escape(title)}</title>"]
    if column.get("mde"):
        parts.append(f'<rect x="{x(-column["mde"])}" y="4" width="{x(column["mde"]) - x(-column["mde"])}" '
                     f'height="{height - 34}" fill="{SKY}" fill-opacity="0.25"><title>minimum detectable effect '
                     f'±{column["mde"]:.2f}</title></rect>')
    for t in _ticks(low, high):
        parts.append(f'<line x1="{x(t)}" x2="{x(t)}" y1="{height - 30}" y2="{height - 25}" stroke="{INK}"/>'
                     f'<text x="{x(t)}" y="{height - 12}" text-anchor="middle">{t:g}</text>')
    parts.append(f'<line x1="{LEFT}" x2="{LEFT + PLOT}" y1="{height - 30}" y2="{height - 30}" stroke="{INK}"/>'
                 f'<line x1="{x(0)}" x2="{x(0)}" y1="4" y2="{height - 30}" stroke="{INK}" stroke-dasharray="3 2"/>'
                 f'<text x="{LEFT + PLOT + 8}" y="{height - 12}">Δ (points)</text>')
    for i, c in enumerate(rows):
        y = 4 + ROW * i + ROW / 2
        colour = VERMILLION if c.get("selected") else BLUE
        low_ci, high_ci = c["ci95"] or (c["delta"], c["delta"])
        marker = (f'<path d="M{x(c["delta"])},{y - 6}l6,6l-6,6l-6,-6z" fill="{colour}"/>' if c.get("selected") else
                  f'<circle cx="{x(c["delta"])}" cy="{y}" r="4" fill="{colour}"/>')
        tip = (f"{c['label']}: Δ {signed(c['delta'])} {interval(c['ci95'])}, spec {c.get('spec', '')}, seeds "
               f"{', '.join(map(str, c.get('seeds') or []))}, command {c.get('command', '')}")
        value = f"{signed(c['delta'])} {interval(c['ci95'])} {' '.join(c.get('marks') or [])}"
        parts.append(f'<g data-family="{escape(c.get("family", ""))}"><title>{escape(tip)}</title>'
                     f'<text x="{LEFT - 8}" y="{y + 4}" text-anchor="end">{escape(c["label"])}</text>'
                     f'<line x1="{x(low_ci)}" x2="{x(high_ci)}" y1="{y}" y2="{y}" stroke="{colour}" stroke-width="2"/>'
                     f'{marker}<text x="{LEFT + PLOT + 8}" y="{y + 4}">{escape(value)}</text></g>')
    return "".join(parts) + "</svg>"


def _column(column: dict, cells: list[dict], index: str) -> str:
    """One column: what it compares against, a family filter, the sortable cells and their forest plot."""
    meta = (f"{column.get('metric', '')}; baseline {column.get('baseline', '')} (mean {number(column.get('baseline_mean'))}"
            f", spec {column.get('baseline_spec', '')}); protocol {column.get('protocol', '')}; stage-1 seeds "
            f"{', '.join(map(str, column.get('stage1_seeds') or []))}; minimum detectable effect "
            f"{'±' + number(column.get('mde')) if column.get('mde') else 'not computed'}; untrained encoder Δ {signed(column.get('untrained_delta')) or 'n/a'}")
    families = sorted({c.get("family", "") for c in cells})
    boxes = "".join(f'<label><input type="checkbox" checked value="{escape(f)}"> {escape(f)}</label>' for f in families)
    headers = ["objective", "family", "T", "seeds", "mean", "Δ", "95% CI", "p", "p adj.", "marks", "reproduce"]
    rows = [[(escape(c["label"]), "text"), (escape(c.get("family", "")), "text"),
             (number(c.get("temperature")), c.get("temperature")), (str(len(c.get("seeds") or [])), len(c.get("seeds") or [])),
             (number(c.get("mean")), c.get("mean")), (signed(c.get("delta")), c.get("delta")),
             (interval(c.get("ci95")), c["ci95"][0] if c.get("ci95") else None), (pvalue(c.get("p")), c.get("p")),
             (pvalue(c.get("p_adjusted")), c.get("p_adjusted")), (escape(" ".join(c.get("marks") or [])), "text"),
             (_reproduce(c), "text")] for c in cells]
    attrs = [f' data-family="{escape(c.get("family", ""))}"' + (' class="selected"' if c.get("selected") else "")
             for c in cells]
    missing = len(cells) - len(ranked(cells))
    return (f'<section id="{index}" aria-labelledby="{index}-h"><h3 id="{index}-h">{escape(column["id"])}</h3>'
            f'<p class="meta">{escape(meta)}</p>'
            f'<fieldset class="families"><legend>families shown</legend>{boxes}</fieldset>'
            f"{_table(headers, rows, attrs) if cells else '<p>No cells yet.</p>'}{forest_svg(column, cells)}"
            + (f'<p class="meta">{missing} cell(s) without a paired Δ are listed in the table only.</p>' if missing else "")
            + "</section>")


def _claims(claims: list[dict]) -> str:
    headers = ["claim", "round", "column", "objective", "baseline", "seeds", "Δ", "95% CI", "p", "p adj.",
               "MDE", "verdict", "reproduce"]
    rows = [[(escape(c["id"]), "text"), (escape(c.get("round", "")), "text"), (escape(c["column"]), "text"),
             (escape(c["label"]), "text"), (escape(c.get("baseline", "")), "text"),
             (str(len(c.get("seeds") or [])), len(c.get("seeds") or [])), (signed(c.get("delta")), c.get("delta")),
             (interval(c.get("ci95")), c["ci95"][0] if c.get("ci95") else None), (pvalue(c.get("p")), c.get("p")),
             (pvalue(c.get("p_adjusted")), c.get("p_adjusted")), (number(c.get("mde")), c.get("mde")),
             (f"<strong>{escape(c.get('verdict', ''))}</strong>", "text"), (_reproduce(c), "text")] for c in claims]
    return "<h3>Claims tested on fresh seeds</h3>" + _table(headers, rows, [""] * len(rows))


def html(data: dict) -> str:
    """The whole page as one string; non-ASCII text becomes character references, so any file encoding reads it."""
    columns, cells, claims = data.get("columns", []), data.get("cells", []), data.get("claims", [])
    modalities = list(dict.fromkeys([c["modality"] for c in columns] + list(data.get("verdicts", {}))))
    tabs, panels = [], []
    for i, modality in enumerate(modalities):
        tabs.append(f'<button type="button" role="tab" id="tab-{i}" aria-controls="panel-{i}" aria-selected="false">'
                    f"{escape(modality)}</button>")
        body = [f"<h2>{escape(modality)}</h2>",
                f'<p class="verdict">{escape(data.get("verdicts", {}).get(modality, "No verdict yet."))}</p>']
        mine = [c for c in claims if modality_of(c["column"]) == modality]
        body.append(_claims(mine) if mine else "<p>No claims tested on fresh seeds yet.</p>")
        for j, column in enumerate(c for c in columns if c["modality"] == modality):
            body.append(_column(column, [c for c in cells if c["column"] == column["id"]], f"col-{i}-{j}"))
        panels.append(f'<div role="tabpanel" id="panel-{i}" aria-labelledby="tab-{i}">{"".join(body)}</div>')
    legend = ("Δ: paired difference to the column's baseline over the same seeds, in points; 95% CI from the paired "
              "t distribution; H: beyond the Holm correction of its family; C: confirmed on fresh seeds; shaded band: "
              "±minimum detectable effect (80% power); vermillion diamond and bold row: the family's tuned configuration.")
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width,initial-scale=1"><title>hardneg leaderboard</title><style>{CSS}</style>'
            f"</head><body><h1>hardneg leaderboard: which way of handling negatives helps, where, by how much</h1>"
            f'<p class="meta">{escape(data.get("provenance", ""))}</p><p class="meta">{escape(legend)}</p>'
            f'<div role="tablist" aria-label="modality">{"".join(tabs)}</div>{"".join(panels)}'
            f'<details><summary>History of marks</summary><pre style="white-space:pre-wrap">'
            f'{escape(data.get("history", ""))}</pre></details><script>{JS}</script></body></html>\n')
    return page.encode("ascii", "xmlcharrefreplace").decode("ascii")


def forest_png(data: dict, path: Path, pyplot) -> None:
    """The same forest plots as the page, one panel per column, rows ranked by Δ, for the README and for print."""
    columns = data.get("columns", [])
    per_row = min(3, max(1, len(columns)))
    grid_rows = max(1, math.ceil(len(columns) / per_row))
    tallest = max([len(ranked([c for c in data.get("cells", []) if c["column"] == col["id"]])) for col in columns] or [1])
    fig, axes = pyplot.subplots(grid_rows, per_row, squeeze=False,
                                figsize=(4.6 * per_row, grid_rows * (1.1 + 0.22 * max(tallest, 1))))
    for ax in axes.flat[len(columns):]:
        ax.set_axis_off()
    for ax, column in zip(axes.flat, columns, strict=False):
        rows = ranked([c for c in data.get("cells", []) if c["column"] == column["id"]])
        ax.set_title(f"{column['id']} vs {column.get('baseline', '')}", fontsize=8)
        if column.get("mde"):
            ax.axvspan(-column["mde"], column["mde"], color=SKY, alpha=0.25, lw=0)
        ax.axvline(0, color=INK, lw=0.8, ls="--")
        for y, c in enumerate(rows):
            low, high = c["ci95"] or (c["delta"], c["delta"])
            colour = VERMILLION if c.get("selected") else BLUE
            ax.errorbar(c["delta"], y, xerr=[[c["delta"] - low], [high - c["delta"]]], fmt="D" if c.get("selected")
                        else "o", color=colour, ms=4, lw=1.2, capsize=2)
            if c.get("marks"):
                ax.annotate(" ".join(c["marks"]), (high, y), xytext=(3, 0), textcoords="offset points", fontsize=6,
                            va="center", fontweight="bold" if "C" in c["marks"] else "normal")
        ax.set_yticks(range(len(rows)), [c["label"] for c in rows], fontsize=6)
        ax.set_ylim(len(rows) - 0.5 if rows else 0.5, -0.5)
        ax.tick_params(axis="x", labelsize=6)
        ax.set_xlabel(f"Δ {column.get('metric', '')} (points), 95% CI", fontsize=6)
        if not rows:
            ax.text(0.5, 0.5, "no paired cells yet", transform=ax.transAxes, ha="center", fontsize=7)
    fig.suptitle("Paired Δ to the baseline, ranked (diamond: tuned configuration; band: ±minimum detectable effect; "
                 "H: beyond correction; C: confirmed)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    pyplot.close(fig)
