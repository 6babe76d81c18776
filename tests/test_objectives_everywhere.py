"""Any registered objective runs in every pipeline with no pipeline change: a throwaway family, one real step each.

Then every registered family at its defaults, one real step in each pipeline it applies to (the
local-global JSD estimator is graph-only).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from common.objectives import REGISTRY, Family, Param, build, make_objective, parse_objective, register, unregister
from tests.graph.conftest import write_toy_tu
from tests.sentence.conftest import use_tiny_books


def margin_loss(anchors, candidates, pos_mask, neg_mask, *, temperature, row_weights=None, margin):
    """A family no pipeline knows: InfoNCE with the positive's logit lowered by ``margin`` (masked form only)."""
    logits = F.normalize(anchors, dim=1) @ F.normalize(candidates, dim=1).T / temperature
    negatives = logits.masked_fill(~neg_mask, float("-inf"))
    pair_row, pair_col = pos_mask.nonzero(as_tuple=True)
    positive = logits[pair_row, pair_col] - margin
    losses = torch.logaddexp(positive, torch.logsumexp(negatives[pair_row], dim=1)) - positive
    per_anchor = torch.zeros(len(anchors), dtype=losses.dtype).index_add_(0, pair_row, losses) / pos_mask.sum(1).clamp_min(1)
    weights = pos_mask.any(1).to(losses.dtype) * (1 if row_weights is None else row_weights.to(losses.dtype))
    return (per_anchor * weights).sum() / weights.sum()


@pytest.fixture
def margin():
    register(Family("margin-test", "InfoNCE with a margin on the positive (test only)", "this test",
                    params={"margin": Param(0.5, "subtracted from the positive logit", 0.0)},
                    masked=f"{__name__}:margin_loss"))
    yield parse_objective("margin-test:margin=0.3")
    unregister("margin-test")


def test_the_throwaway_family_is_validated_like_any_other(margin):
    assert str(margin) == "margin-test:margin=0.3"
    with pytest.raises(ValueError, match=r"margin must be in \[0, inf\)"):
        parse_objective("margin-test:margin=-1")
    z = torch.randn(6, 4)
    assert torch.isfinite(build(margin, temperature=0.5)(z, z.flip(0)))


def _image_step(objective, tmp_path: Path) -> None:
    from image.config import QUICK
    from image.data import ImageData
    from image.train import pretrain

    # 16 images in one batch: 30 negatives per anchor, enough for every family's defaults (MoCHi mixes 16).
    images = torch.randint(0, 256, (16, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(16) % 2
    data = ImageData("cifar10-jpeg", images, images, labels, images[:4], labels[:4], num_classes=2)
    cfg = dataclasses.replace(QUICK, width=4, epochs=1, batch_size=16, train_per_class=0, threads=0)
    state = pretrain(cfg, objective, data, tmp_path, progress=False)
    assert state["config"]["objective"] == objective.to_dict() and torch.isfinite(torch.tensor(state["history"][-1]["loss"]))


def _quick_thought_step(objective, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sentence.config import get_config
    from sentence.corpus import load_corpus
    from sentence.train import train

    use_tiny_books(tmp_path, monkeypatch)
    config = get_config("quick", corpus={"vocab_size": 100, "val_books": 1}, model={"embed_dim": 8, "hidden_dim": 16},
                        train={"batch_size": 24, "steps": 2, "eval_every": 2, "checkpoint_every": 2, "val_batches": 2})
    state = train(config, objective, load_corpus(config.corpus, verbose=False), tmp_path / "qt.pt", progress=False)
    assert state["step"] == 2 and state["objective"] == objective.to_dict()


def _finetune_step(objective, tmp_path: Path) -> None:
    """One st-finetune step of the shipped MiniLM on two (anchor, positive) pairs, through the pipeline's loss factory."""
    from sentence.encoders import load_minilm
    from sentence.finetune import make_loss

    model = load_minilm()
    model.max_seq_length = 8
    columns = [model.preprocess(texts) for texts in (["a cat sat", "rain fell", "it was late"],
                                                      ["on the mat", "all day", "and dark"])]
    loss = make_loss(model, objective, scale=20.0).compute_loss_from_embeddings(
        [model(features)["sentence_embedding"] for features in columns], None)
    loss.backward()
    assert torch.isfinite(loss)


def _infograph_step(objective, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, distinct_nodes: bool):
    from graph.config import PROFILES, expand_cells
    from graph.data import load_tu
    from graph.train import train_and_evaluate

    monkeypatch.setenv("HARDNEG_CACHE", str(tmp_path / "cache"))
    root = write_toy_tu(tmp_path / "data")
    settings = dataclasses.replace(PROFILES["quick"], repeats=1, epochs=1)
    cell = expand_cells(["TOY"], [objective], profile="quick", seed=0, settings=settings)[-1]
    metrics = train_and_evaluate(cell, load_tu("TOY", root), progress=False, distinct_nodes=distinct_nodes)
    assert not metrics["diverged"] and 0 <= metrics["accuracy"] <= 100
    return cell, settings


def test_image_pretrains_with_it(margin, tmp_path: Path):
    _image_step(margin, tmp_path)


def test_quick_thought_trains_with_it(margin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _quick_thought_step(margin, tmp_path, monkeypatch)


def test_st_finetune_trains_with_it(margin, tmp_path: Path):
    _finetune_step(margin, tmp_path)


@pytest.mark.parametrize("distinct_nodes", [True, False])
def test_infograph_trains_with_it(margin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, distinct_nodes: bool):
    cell, settings = _infograph_step(margin, tmp_path, monkeypatch, distinct_nodes)
    assert cell.label == "margin-test margin=0.3" and cell.temperature == settings.temperature


CONTRASTIVE = [name for name, family in REGISTRY.items() if not family.local_global]


@pytest.mark.parametrize("name", CONTRASTIVE)
def test_every_registered_family_pretrains_images(name, tmp_path: Path):
    _image_step(make_objective(name), tmp_path)


@pytest.mark.parametrize("name", CONTRASTIVE)
def test_every_registered_family_trains_quick_thought(name, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _quick_thought_step(make_objective(name), tmp_path, monkeypatch)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_registered_family_trains_infograph(name, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _infograph_step(make_objective(name), tmp_path, monkeypatch, distinct_nodes=True)


@pytest.mark.parametrize("spec,counts,match", [
    ("mochi:num_hard=24", [30, 23], "num_hard = 24"),
    ("ring:lower=0.3,upper=0.4", [2], "lower/upper"),
])
def test_parameters_too_large_for_the_batch_are_refused_before_training(spec, counts, match):
    from common.objectives import check_negatives

    with pytest.raises(ValueError, match=match):
        check_negatives(parse_objective(spec), counts, temperature=0.5)
    check_negatives(parse_objective(spec), [c + 10 for c in counts if c > 2], temperature=0.5)


def test_a_graph_run_refuses_num_hard_beyond_its_batch_as_a_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from common.errors import UserError

    with pytest.raises(UserError, match=r"TOY: mochi:num_hard=24.*23 negatives"):  # 24 toy graphs in one batch
        _infograph_step(parse_objective("mochi:num_hard=24"), tmp_path, monkeypatch, distinct_nodes=True)


def test_the_loss_benchmark_refuses_a_batch_too_small_in_one_line():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "benchmarks.loss_speed", "--batches", "8"], capture_output=True,
                          text=True, cwd=Path(__file__).resolve().parent.parent, timeout=120)
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert done.stderr.count("\n") == 1 and "num_hard = 16" in done.stderr and "14 negatives" in done.stderr


def test_a_key_given_twice_is_an_error():
    with pytest.raises(ValueError, match="beta is given twice"):
        parse_objective("hard:beta=1,beta=2")
    with pytest.raises(ValueError, match="given twice"):
        parse_objective("hcl:tau_plus=0.1, tau_plus =0.2")
    assert parse_objective("hcl:beta=2") == parse_objective("hard:beta=2")  # an alias's own values may be overridden


def test_where_resolves_every_registered_implementation():
    from common.objectives import where
    from common.paths import REPO_ROOT

    for name, family in REGISTRY.items():
        places = where(family)
        assert set(places) == {f for f in ("masked", "two_view", "local_global") if getattr(family, f)}, name
        for form, place in places.items():
            path, line = place.rsplit(":", 1)
            module, function = getattr(family, form).split(":")
            assert path == module.replace(".", "/") + ".py", (name, form)
            assert (REPO_ROOT / path).read_text().splitlines()[int(line) - 1].startswith(f"def {function}("), place


def test_every_family_names_its_reference_and_deviation():
    for name, family in REGISTRY.items():
        assert family.reference and family.reference.strip() == family.reference, name
        assert family.reference == "paper only" or ":" in family.reference, name  # repository: file
        assert isinstance(family.deviation, str), name


def test_a_record_of_a_retired_parameter_reads_back_as_history_and_cannot_run():
    from common.objectives import from_dict

    old = from_dict({"name": "fnc", "params": {"k": 4.0, "mode": "attraction"}})
    assert old.retired and str(old) == "fnc:k=4,mode=attraction" and old.label() == "fnc k=4"
    assert from_dict({"name": "fnc", "params": {"k": 1.0, "mode": "attraction"}}).label() == "fnc k=1"  # never "fnc"
    with pytest.raises(ValueError, match="earlier version"):
        build(old, temperature=0.5)
    with pytest.raises(ValueError, match="unknown parameter k"):
        parse_objective("fnc:k=4")
    assert not parse_objective("fnc").retired


def test_the_catalogue_and_the_plugins_register_whichever_module_is_imported_first(tmp_path: Path):
    import subprocess
    import sys

    plugin = tmp_path / "late_family.py"
    plugin.write_text("from common.objectives import REGISTRY, Family, register\n"
                      "assert 'mochi' in REGISTRY, 'plugins load after the built-in families'\n"
                      "register(Family('late-test', 'test only', 'this test', masked='common.losses:masked_hcl_loss'))\n")
    root = Path(__file__).resolve().parent.parent
    for first in ("common.objectives", "common.families"):
        code = f"import {first}; from common.objectives import REGISTRY; print(len(REGISTRY), list(REGISTRY)[-1])"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=60,
                              env={**__import__("os").environ, "HARDNEG_PLUGINS": str(plugin)})
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == [str(len(REGISTRY) + 1), "late-test"], first
