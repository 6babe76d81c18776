"""TU graph-classification data sets, featurised as the released InfoGraph/HCL code does.

Raw files are read from ``DATA_DIR/tu/NAME/raw/`` (read-only) and processed into the
writable cache. Node labels (one-hot) are the features, node attributes when a set has no
labels, and graphs with neither get one-hot degrees (max degree < 1000)
or standardised degrees, as in the released code. Mini-batches are collated once per
run: the released code shuffles the data set once and then iterates a non-shuffling
loader, so the batches are the same every epoch and need not be rebuilt; each carries its
sparse neighbour-sum operator (``graph.sparse``), also built once, and optionally the nodes
that the encoder cannot tell apart (``graph.wl``).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sys
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from common.errors import UserError
from common.paths import cache_dir, data_dir
from graph.sparse import SparseMatrix
from graph.wl import distinct_rows, wl_colours

REQUIRED_SUFFIXES = ("A.txt", "graph_indicator.txt", "graph_labels.txt")
TU_URL = "https://chrsmrrs.github.io/datasets/docs/datasets/"
# The TU format: per file suffix, the kind of number on each line and what the lines count
# (one line per edge of NAME_A.txt, per node of NAME_graph_indicator.txt, per graph of NAME_graph_labels.txt).
TU_FILES = {
    "A": (int, "edges"),
    "graph_indicator": (int, "nodes"),
    "graph_labels": (int, "graphs"),
    "node_labels": (int, "nodes"),
    "node_attributes": (float, "nodes"),
    "edge_labels": (int, "edges"),
    "edge_attributes": (float, "edges"),
    "graph_attributes": (float, "graphs"),
}
_ONE_HOT_LIMIT = 8 * 2**30  # bytes of float32 one-hot label features PyG may build
_COUNTED_BY = {"edges": "A", "nodes": "graph_indicator", "graphs": "graph_labels"}


@dataclass
class GraphData:
    """A featurised data set: PyG graphs in a fixed order, their labels and feature width."""

    name: str
    graphs: list  # list[torch_geometric.data.Data]
    labels: Tensor
    num_features: int
    _colours: dict[int, list[Tensor]] = field(default_factory=dict, repr=False)  # per depth, per graph

    def order(self, seed: int) -> list[int]:
        """The run's graph order: one shuffle with ``seed``, as the released code shuffles once."""
        return torch.randperm(len(self.graphs), generator=torch.Generator().manual_seed(seed)).tolist()

    def batches(self, batch_size: int, seed: int, device: torch.device | str = "cpu", distinct_depth: int = 0) -> list:
        """Shuffle graph order with ``seed`` once, then collate fixed batches onto ``device``.

        Each PyG ``Batch`` gains ``neighbours`` (:class:`graph.sparse.SparseMatrix`) and, with
        ``distinct_depth`` > 0 (the encoder's layer count), ``rows`` and ``row_counts``
        (:func:`graph.wl.distinct_rows`).
        """
        order = self.order(seed)
        colours = self.colours(distinct_depth) if distinct_depth else None
        return [collate([self.graphs[i] for i in chunk], device,
                        None if colours is None else torch.cat([colours[i] for i in chunk]))
                for chunk in (order[start : start + batch_size] for start in range(0, len(order), batch_size))]

    def colours(self, depth: int) -> list[Tensor]:
        """Each graph's node colours after ``depth`` refinements (:func:`graph.wl.wl_colours`), computed once."""
        if depth not in self._colours:
            edges, counts = _union_edges(self.graphs)
            union = wl_colours(torch.cat([g.x for g in self.graphs]), edges, depth)
            self._colours[depth] = list(union.split(counts))
        return self._colours[depth]


def collate(graphs: list, device: torch.device | str = "cpu", colours: Tensor | None = None):
    """One PyG ``Batch`` of ``graphs`` on ``device`` with its neighbour-sum operator attached.

    With the nodes' ``colours`` (:func:`graph.wl.wl_colours`), also the batch's distinct rows.
    """
    from torch_geometric.data import Batch

    batch = Batch.from_data_list(graphs).to(device)
    batch.neighbours = SparseMatrix.neighbours(batch.edge_index, batch.num_nodes)
    if colours is not None:
        batch.rows, batch.row_counts = distinct_rows(colours.to(device), batch.batch)
    return batch


def available(root: Path) -> list[str]:
    """Names of TU data sets with raw files under ``root/tu``."""
    tu = root / "tu"
    return sorted(p.parent.name for p in tu.glob("*/raw") if (p / f"{p.parent.name}_A.txt").exists()) if tu.is_dir() else []


def _expected_files(name: str) -> str:
    return ", ".join(f"{name}_{suffix}" for suffix in REQUIRED_SUFFIXES)


def _tu_error(path: Path, line: int | None, problem: str) -> UserError:
    """The one error of a malformed TU file: file, line and problem, and what to do."""
    where = f"{path}:{line}" if line else str(path)
    return UserError(f"{where}: {problem}; fix the file or fetch the data set again from {TU_URL}")


def _read_numbers(path: Path, kind: type) -> np.ndarray:
    """The comma-separated numbers of ``path`` as a (lines, width) array; every line as wide as the first."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise _tu_error(path, None, f"is not text (byte {err.start} is not UTF-8)") from None
    if not text.strip():
        raise _tu_error(path, None, "is empty")
    if not text.endswith("\n"):
        raise _tu_error(path, text.count("\n") + 1, "has no newline at its end (PyG's reader would drop this line)")
    values, width = array("q" if kind is int else "d"), 0
    for number, line in enumerate(text.split("\n")[:-1], 1):
        try:
            row = [kind(token) for token in line.split(",")]
        except ValueError:
            what = "whole numbers" if kind is int else "numbers"
            raise _tu_error(path, number, f"{line.strip()[:40]!r} is not {what} separated by commas") from None
        if kind is float and not all(map(math.isfinite, row)):
            raise _tu_error(path, number, "holds NaN or infinity")
        width = width or len(row)
        if len(row) != width:
            raise _tu_error(path, number, f"has {len(row)} values where line 1 has {width}")
        values.extend(row)
    return np.frombuffer(values, dtype=np.int64 if kind is int else np.float64).reshape(-1, width)


def check_tu_files(name: str, folder: Path) -> None:
    """Raise ``UserError`` naming file, line and problem unless the TU files of ``name`` in ``folder`` agree.

    Checked: numbers on every line, one line per edge/node/graph in each file, node ids of
    NAME_A.txt within the nodes, edges within one graph, graph ids of the indicator within the
    graphs, in order, and every graph with a node (PyG assumes all of these and fails deep inside otherwise).
    """
    paths = {suffix: folder / f"{name}_{suffix}.txt" for suffix in TU_FILES}
    tables = {suffix: _read_numbers(path, TU_FILES[suffix][0]) for suffix, path in paths.items() if path.is_file()}
    counts = {rows: len(tables[suffix]) for rows, suffix in _COUNTED_BY.items()}
    if counts["graphs"] < 2:
        raise _tu_error(paths["graph_labels"], None, f"holds {counts['graphs']} graph; a data set needs two or more")
    for suffix, table in tables.items():
        rows = TU_FILES[suffix][1]
        if len(table) != counts[rows]:
            raise _tu_error(paths[suffix], None, f"has {len(table)} lines, but {paths[_COUNTED_BY[rows]].name} has "
                            f"{counts[rows]} {rows}: one line per {rows[:-1]}")
    for suffix, width in (("A", 2), ("graph_indicator", 1), ("graph_labels", 1)):
        if tables[suffix].shape[1] != width:
            raise _tu_error(paths[suffix], 1, f"has {tables[suffix].shape[1]} values per line, not {width}")
    edges, indicator = tables["A"], tables["graph_indicator"][:, 0]
    nodes, graphs = counts["nodes"], counts["graphs"]
    for line in np.flatnonzero(((edges < 1) | (edges > nodes)).any(axis=1))[:1]:
        raise _tu_error(paths["A"], line + 1, f"edge {edges[line].tolist()} names a node outside 1..{nodes} "
                        f"({paths['graph_indicator'].name} has {nodes} nodes)")
    for line in np.flatnonzero((indicator < 1) | (indicator > graphs))[:1]:
        raise _tu_error(paths["graph_indicator"], line + 1, f"graph {indicator[line]} is outside 1..{graphs} "
                        f"({paths['graph_labels'].name} has {graphs} graphs)")
    for line in np.flatnonzero(np.diff(indicator) < 0)[:1]:
        raise _tu_error(paths["graph_indicator"], line + 2, "graph ids must not decrease: the nodes of a graph come together")
    for graph in np.flatnonzero(np.bincount(indicator, minlength=graphs + 1)[1:] == 0)[:1]:
        raise _tu_error(paths["graph_indicator"], None, f"graph {graph + 1} has no nodes")
    for suffix in ("node_labels", "edge_labels"):
        if suffix in tables:
            table = tables[suffix]
            span = int((table.max(axis=0) - table.min(axis=0) + 1).sum())
            if 4 * span * len(table) > _ONE_HOT_LIMIT:
                raise _tu_error(paths[suffix], None, f"labels span {span} values: PyG's one-hot features would take "
                                f"{4 * span * len(table) / 1e9:.0f} GB; number the labels 0..K-1")
    owners = indicator[edges - 1]
    for line in np.flatnonzero(owners[:, 0] != owners[:, 1])[:1]:
        raise _tu_error(paths["A"], line + 1, f"edge {edges[line].tolist()} joins graph {owners[line, 0]} to graph "
                        f"{owners[line, 1]}")


def _stage_raw(name: str, root: Path, cache: Path) -> None:
    """Copy raw files into the cache so PyG can write ``processed/`` beside them; check them before PyG parses them."""
    source = root / "tu" / name / "raw"
    target = cache / "tu" / name / "raw"
    missing = [s for s in REQUIRED_SUFFIXES if not (source / f"{name}_{s}").is_file()]
    if missing:
        raise UserError(f"data set {name} in {source} lacks {', '.join(f'{name}_{s}' for s in missing)}")
    stale = [file for file in source.glob(f"{name}_*.txt")
             if not (target / file.name).exists() or (target / file.name).stat().st_size != file.stat().st_size]
    if stale or not (target.parent / "processed").is_dir():
        check_tu_files(name, source)
    target.mkdir(parents=True, exist_ok=True)
    for file in stale:
        shutil.copyfile(file, target / file.name)
        shutil.rmtree(target.parent / "processed", ignore_errors=True)


def _union_edges(graphs: list) -> tuple[Tensor, list[int]]:
    """Edges of the disjoint union of ``graphs`` (node ids shifted graph by graph), and each graph's node count."""
    counts = [g.num_nodes for g in graphs]
    offsets = torch.tensor([0, *counts[:-1]]).cumsum(0).tolist()
    return torch.cat([g.edge_index + offset for g, offset in zip(graphs, offsets, strict=True)], dim=1), counts


def _degree_features(graphs: list) -> int:
    """Give featureless graphs degree features in place; returns the feature width."""
    from torch_geometric.utils import degree

    edges, counts = _union_edges(graphs)
    deg = degree(edges[0], num_nodes=sum(counts)).long()
    max_degree = int(deg.max())
    if max_degree < 1000:
        features = F.one_hot(deg, max_degree + 1).float()
    else:
        deg = deg.float()
        features = ((deg - deg.mean()) / deg.std()).unsqueeze(1)
    for g, x in zip(graphs, features.split(counts), strict=True):
        g.x = x
    return features.shape[1]


def _read_processed(cache: Path, name: str) -> list:
    """The graphs of PyG's ``TUDataset`` under ``cache/tu/name``, processing the raw files there when needed.

    PyG's progress lines ("Processing...") go to stdout: stderr is kept for warnings and the one error line.
    """
    from torch_geometric.datasets import TUDataset

    with contextlib.redirect_stderr(sys.stdout):
        dataset = TUDataset(str(cache / "tu"), name=name)
        if dataset.num_node_labels == 0 and dataset.num_node_attributes > 0:
            # Node labels are the features when present (as released); otherwise the attributes.
            dataset = TUDataset(str(cache / "tu"), name=name, use_node_attr=True)
    return [dataset[i] for i in range(len(dataset))]


def load_tu(name: str, root: Path | None = None, *, download: bool | None = None) -> GraphData:
    """Load TU data set ``name`` from ``root`` (default: ``DATA_DIR``).

    When the raw files are absent, PyG's normal download is tried unless ``download`` is
    False (default: try, except when ``HARDNEG_OFFLINE=1``).
    """
    from torch_geometric.datasets import TUDataset

    if download is None:
        download = os.environ.get("HARDNEG_OFFLINE") != "1"

    root = Path(root) if root is not None else data_dir()
    cache = cache_dir()
    if (root / "tu" / name / "raw").is_dir():
        _stage_raw(name, root, cache)
    elif not (cache / "tu" / name / "processed").is_dir():
        found = ", ".join(available(root)) or "none"
        hint = (
            f"data set {name} not found under {root / 'tu'} (found: {found}); expected {root / 'tu' / name / 'raw'}/"
            f"{{{_expected_files(name)}}}, from {TU_URL}"
        )
        if not download:
            raise UserError(hint)
        try:
            TUDataset(str(cache / "tu"), name=name)  # PyG's normal download, for online users
        except Exception as err:  # no network, unknown name, HTTP error: all mean "not available"
            shutil.rmtree(cache / "tu" / name, ignore_errors=True)
            raise UserError(f"{hint} ({type(err).__name__} while downloading)") from None
    processed = cache / "tu" / name / "processed"
    try:
        graphs = _read_processed(cache, name)
    except Exception:  # a damaged cache (truncated processed/data.pt) is rebuilt from the raw files
        shutil.rmtree(processed, ignore_errors=True)
        try:
            graphs = _read_processed(cache, name)
        except Exception as err:  # PyG raises many types on malformed files, torch on a full disk
            reason = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
            raise UserError(f"could not process data set {name} ({_expected_files(name)}) into its cache {processed}: "
                            f"{reason}") from None
    if not graphs:
        raise UserError(f"data set {name} has no graphs")
    has_x = graphs[0].x is not None and graphs[0].x.shape[1] > 0
    num_features = graphs[0].x.shape[1] if has_x else _degree_features(graphs)
    labels = torch.cat([g.y for g in graphs])
    return GraphData(name, graphs, labels, num_features)
