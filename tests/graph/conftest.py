"""Shared graph test data: a toy TU data set written in the real file format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from common.objectives import make_objective

REPO = Path(__file__).resolve().parents[2]
HARD_JSD = make_objective("jsd", tau_plus=0.5, beta=1.0)
STAGED = REPO.parent / "shared" / "data"


def write_toy_tu(root: Path, name: str = "TOY", graphs: int = 24, seed: int = 0) -> Path:
    """A small TU-format data set: rings and stars of random sizes, labelled by shape."""
    rng = np.random.default_rng(seed)
    raw = root / "tu" / name / "raw"
    raw.mkdir(parents=True)
    edges, indicator, labels, offset = [], [], [], 0
    for g in range(graphs):
        n, star = int(rng.integers(4, 9)), g % 2
        pairs = [(0, j) for j in range(1, n)] if star else [(j, (j + 1) % n) for j in range(n)]
        for a, b in pairs:
            edges += [(a + offset + 1, b + offset + 1), (b + offset + 1, a + offset + 1)]
        indicator += [g + 1] * n
        labels.append(star)
        offset += n
    (raw / f"{name}_A.txt").write_text("".join(f"{a}, {b}\n" for a, b in edges))
    (raw / f"{name}_graph_indicator.txt").write_text("".join(f"{i}\n" for i in indicator))
    (raw / f"{name}_graph_labels.txt").write_text("".join(f"{y}\n" for y in labels))
    return root


@pytest.fixture
def toy_root(tmp_path, monkeypatch):
    monkeypatch.setenv("HARDNEG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HARDNEG_OFFLINE", "1")
    return write_toy_tu(tmp_path / "data")
