"""The leaderboard: every registered contrastive objective is declared, cells come from paired records alone."""

from __future__ import annotations

from benchmarks.leaderboard import build, markdown
from benchmarks.suites import expand, leaderboard_objectives
from common.objectives import REGISTRY


def _image(objective, seed, accuracy):
    config = {"profile": "quick", "dataset_label": "C10", "method": "x", "anneal_beta": False,
              **({"method": "random-init"} if objective is None else {"objective": objective})}
    return {"pipeline": "image", "config": config, "seed": seed, "metrics": {"linear_top1": accuracy}}


def test_every_contrastive_family_has_a_row_in_every_modality():
    specs = leaderboard_objectives()
    families = {spec.split(":")[0] for spec in specs}
    assert families == {name for name, f in REGISTRY.items() if not f.local_global}
    keys = {c.key.split("/")[1] for c in expand("leaderboard", "quick")}
    assert keys == {"graph", "image", "sentence"}


def test_cells_are_paired_deltas_to_ntxent_with_holm_and_the_untrained_row():
    records = [_image({"name": "ntxent", "params": {}}, s, 40.0 + s) for s in range(4)]
    records += [_image({"name": "hard", "params": {"beta": 1.0, "tau_plus": 0.1}}, s, 42.0 + s + 0.01 * s) for s in range(4)]
    records += [_image(None, s, 20.0) for s in range(4)]
    rows, ranks, confirmed = build(records)
    text = "\n".join(markdown(rows, ranks, confirmed, "coverage"))
    assert "| hard | +2.02 ± 0.01 H | 1.0 | 1.0 |" in text
    assert "| ntxent | 41.50 (n=4) | 2.0 | 2.0 |" in text
    assert "| untrained | -21.50 ± 0.65 |" in text
    assert "Beyond noise (Holm): hard on image C10 (+2.02 ± 0.01)." in text and not confirmed
