"""What every page of tables/ shares: the provenance line, grouping timings by machine, writing a page."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from common.io import atomic_write_text


def provenance(records: list[dict]) -> str:
    """How many records a page is built from, at which commits, on which machines."""
    commits = sorted({r["git_commit"][:12] for r in records})
    hardware = sorted({machine(r) if r["hardware"].get("gpu") else f"{machine(r)}, GPU: none" for r in records})
    return f"{len(records)} run records; commits {', '.join(commits)}; hardware: {'; '.join(hardware)}."


def machine(record: dict) -> str:
    """The machine a record ran on: CPU model, core count and GPU (when it had one)."""
    hw = record["hardware"]
    return f"{hw['cpu']} ({hw['cpu_count']} cores)" + (f", {hw['gpu']}" if hw.get("gpu") else "")


def per_machine(records: list[dict], extra: Callable[[dict], tuple] = lambda r: ()) -> dict[tuple, list[dict]]:
    """Records grouped by (machine, torch threads, *extra(record)), in first-seen order: timings never mix across them."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        groups[(machine(r), r["hardware"]["torch_threads"], *extra(r))].append(r)
    return groups


def latest_provenance(records: list[dict], command: str) -> str:
    """Where the newest of a benchmark's records (the one a speed table shows) was measured."""
    latest, hw = records[-1], records[-1]["hardware"]
    return (f"Latest of {len(records)} `{command}` records: {hw['cpu']} ({hw['cpu_count']} cores, {hw['torch_threads']} "
            f"torch threads), GPU: {hw['gpu'] or 'none'}, commit {latest['git_commit'][:12]}, {latest['finished_at']}")


def write_page(out_dir: Path, name: str, lines: list[str]) -> Path:
    """``out_dir/name``, the lines joined with a final newline, written atomically."""
    path = out_dir / name
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def replace_readme_section(readme: Path, markers: tuple[str, str], body: list[str]) -> None:
    """Replace the text between two markers of the README (generated, like every table); a README without the
    opening marker is left alone."""
    start, end = markers
    if not readme.exists() or start not in (text := readme.read_text()):
        return
    before, rest = text.split(start, 1)
    after = rest.split(end, 1)[1] if end in rest else ""
    atomic_write_text(readme, before + start + "\n" + "\n".join(body) + "\n" + end + after)
