"""TU loading: node features, batches, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from common.errors import UserError
from graph.data import load_tu
from tests.graph.conftest import STAGED


def test_degree_features_match_a_loop_count(toy_root):
    data = load_tu("TOY", toy_root)
    assert len(data.graphs) == 24 and set(data.labels.tolist()) == {0, 1}
    for graph in data.graphs:
        degree = [0] * graph.num_nodes
        for source in graph.edge_index[0].tolist():
            degree[source] += 1
        assert graph.x.argmax(dim=1).tolist() == degree
        assert graph.x.shape[1] == data.num_features == 8  # stars of 8 nodes: max degree 7


def test_batches_are_fixed_by_seed_and_masks_equal_loop_version(toy_root):
    data = load_tu("TOY", toy_root)
    a, b, c = data.batches(5, seed=1), data.batches(5, seed=1), data.batches(5, seed=2)
    assert [x.y.tolist() for x in a] == [x.y.tolist() for x in b]
    assert [x.num_nodes for x in a] != [x.num_nodes for x in c]
    batch = a[0]
    loop = torch.zeros(batch.num_nodes, batch.num_graphs, dtype=torch.bool)
    for node, graph in enumerate(batch.batch.tolist()):
        loop[node, graph] = True
    assert torch.equal(F.one_hot(batch.batch, batch.num_graphs).bool(), loop)


def test_staged_mutag_uses_node_labels(tmp_path, monkeypatch):
    monkeypatch.setenv("HARDNEG_CACHE", str(tmp_path))
    data = load_tu("MUTAG", STAGED)
    assert len(data.graphs) == 188 and data.num_features == 7
    assert sorted(torch.bincount(data.labels).tolist()) == [63, 125]


@pytest.mark.parametrize("with_labels", [False, True])
def test_node_attributes_are_used_when_a_set_has_no_node_labels(toy_root, with_labels):
    """Other TU sets: attributes alone become the features; with node labels, labels win (as released)."""
    raw = toy_root / "tu" / "TOY" / "raw"
    nodes = len((raw / "TOY_graph_indicator.txt").read_text().split())
    attributes = np.random.default_rng(1).normal(size=(nodes, 2)).round(4)
    (raw / "TOY_node_attributes.txt").write_text("".join(f"{a}, {b}\n" for a, b in attributes))
    if with_labels:
        (raw / "TOY_node_labels.txt").write_text("".join(f"{i % 3}\n" for i in range(nodes)))
    data = load_tu("TOY", toy_root)
    x = torch.cat([g.x for g in data.graphs])
    if with_labels:
        assert data.num_features == 3 and torch.equal(x, F.one_hot(torch.arange(nodes) % 3, 3).float())
    else:
        assert data.num_features == 2 and torch.allclose(x, torch.tensor(attributes, dtype=torch.float32))


def test_missing_data_set_is_a_clear_error(toy_root):
    with pytest.raises(UserError, match=r"NOPE not found.*found: TOY.*NOPE_A\.txt"):
        load_tu("NOPE", toy_root)
