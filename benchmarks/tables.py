"""Regenerate tables/*.md and tables/*.csv from the committed run records alone.

One module per page writes it (prose and layout; the numbers come from the pipelines' report modules and
``benchmarks.leaderboard``): ``graph_page``, ``image_page``, ``sentence_page``, ``speed_pages`` (graph epoch time,
loss speed), ``leaderboard_md`` and ``robustness_page`` (its numbers from ``robustness_cells``); their figures are
``plots``, what they share ``pages``, and every number is written with ``common.format``. This module holds what the
set needs: the fields each page reads (:data:`NEEDS`), writing the set in one piece, and the command line.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from benchmarks.graph_page import graph_table
from benchmarks.image_page import image_table
from benchmarks.leaderboard_md import leaderboard_table
from benchmarks.robustness_page import robustness_table
from benchmarks.sentence_page import sentence_table
from benchmarks.speed_pages import graph_speed_table, loss_speed_table
from common.cli import run_main
from common.errors import UserError
from common.records import NUMBER, read_records
from graph.report import RECORD_NEEDS as GRAPH_NEEDS
from image.report import RECORD_NEEDS as IMAGE_NEEDS
from sentence.report import RECORD_NEEDS as SENTENCE_NEEDS

TABLES = Path(__file__).resolve().parent.parent / "tables"
_PROVENANCE = {"git_commit": str, "finished_at": str, "seed": int, "wall_time_s": NUMBER, "hardware.cpu": str,
               "hardware.cpu_count": int, "hardware.gpu": (str, type(None)), "hardware.torch_threads": int}
#: The fields each table reads, per pipeline: a record without them is skipped with a warning naming its line.
NEEDS = {pipeline: {**_PROVENANCE, **fields} for pipeline, fields in {
    **GRAPH_NEEDS, **IMAGE_NEEDS, **SENTENCE_NEEDS,
    "graph-epoch-speed": {"metrics.rows": list}, "loss-speed": {"metrics.rows": list},
    "senteval-speed": {"metrics.rows": list}, "senteval-reference": {"metrics.rows": list},
    "senteval-agreement": {"metrics.rows": list},
    "senteval-floor": {f"metrics.{k}": NUMBER for k in ("threads", "sentences", "tokens", "padded_tokens", "batches",
                                                         "gemm_gflop", "floor_s")},
}.items()}
#: Every page, in the order written: each takes all records and the folder, and returns its main file (None
#: when it has no records to show).
PAGES = (graph_table, graph_speed_table, image_table, sentence_table, loss_speed_table, leaderboard_table,
         robustness_table)


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmarks tables`: read the records, write every page (and, for tables/, the README section)."""
    p = argparse.ArgumentParser(description="Regenerate tables/ from the run records in tables/records/*.jsonl.")
    p.add_argument("--records", type=Path, default=TABLES / "records", help="folder of JSONL run records")
    p.add_argument("--out", type=Path, default=TABLES, help="where the tables are written")
    args = p.parse_args(argv)
    if not args.records.exists():
        raise UserError(f"--records {args.records} does not exist; give the folder of JSONL run records (tables/records)")
    own = args.out.resolve() == TABLES.resolve()
    if own and args.records.resolve() != (TABLES / "records").resolve():
        raise UserError(f"--records {args.records} are not the committed tables/records, and their tables would replace "
                        "the committed ones in tables/; give --out DIR for a folder of their own")
    records = read_records(args.records, NEEDS)
    for path in write_pages(records, args.out, TABLES.parent / "README.md" if own else None):
        print(f"wrote {path}")
    return 0


def write_pages(records: list[dict], out: Path, readme: Path | None) -> list[Path]:
    """Write every page into a staging folder inside ``out``, then move them in: a failure or a kill part way
    leaves the old set whole, never a mix. ``readme``, the repository README beside the repository's own
    tables/, gets the leaderboard section; no other README is touched."""
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out, prefix=".staging-"))
    try:
        pages = staging / out.resolve().name  # leaderboard_table writes the README beside its folder: staging's copy
        pages.mkdir()
        if readme is not None and readme.is_file():
            shutil.copyfile(readme, staging / "README.md")
        written = [path.name for path in (page(records, pages) for page in PAGES) if path]
        for page in sorted(pages.iterdir()):
            os.replace(page, out / page.name)
        if readme is not None and (staging / "README.md").is_file() and (staging / "README.md").read_bytes() != readme.read_bytes():
            os.replace(staging / "README.md", readme)
        return [out / name for name in written]
    finally:
        shutil.rmtree(staging, ignore_errors=True)


if __name__ == "__main__":
    run_main(main)
