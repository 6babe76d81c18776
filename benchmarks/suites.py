"""The experiment grids of the paper, declared in one place.

A suite expands to cells; a cell is one pipeline command (``python -m PIPELINE ...``)
that appends its own run records and resumes by itself. The harness runs each cell in
its own process, so a crash loses only that cell, and marks a finished cell with a
``harness`` record so a re-run skips it without starting the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

GRAPH_DATASETS = ("MUTAG", "PTC_MR", "ENZYMES", "PROTEINS", "DD", "IMDB-BINARY", "IMDB-MULTI", "REDDIT-BINARY")
ABLATION_GRAPH_DATASETS = ("MUTAG", "PTC_MR")
IMAGE_HARD_BETAS = (0.5, 1.0, 2.0, 6.0)
PROFILES = ("quick", "paper")


@dataclass(frozen=True)
class SuiteCell:
    suite: str
    key: str  # stable identity: resume and sharding
    argv: tuple[str, ...]  # arguments after `python -m`; "{records}" is replaced by the shard's records file


def _graph(suite: str, dataset: str, method: str, convention: str, profile: str, *, beta: float | None = None,
           tau_plus: float | None = None) -> SuiteCell:
    """A JSD cell of the reproduction: ``method`` infograph, debiased or hard (tau_plus 0.5 unless given)."""
    key = f"graph/{dataset}/{method}/{convention}"
    spec = "jsd"
    if method != "infograph":
        spec += f":tau_plus={0.5 if tau_plus is None else tau_plus:g},convention={convention}"
    if beta is not None:
        spec += f",beta={beta:g}"
        key += f"/beta={beta:g}"
    if tau_plus is not None:
        key += f"/tau+={tau_plus:g}"
    argv = ["graph", "--dataset", dataset, "--objective", spec, "--profile", profile, "--out", "{records}", "--no-progress"]
    return SuiteCell(suite, f"{key}/{profile}", tuple(argv))


def graph_suite(profile: str) -> list[SuiteCell]:
    betas = (1.0,) if profile == "quick" else (1.0, 2.0, 10.0)
    cells = []
    for dataset in GRAPH_DATASETS:
        cells.append(_graph("graph", dataset, "infograph", "paper", profile))
        for convention in ("paper", "reference"):
            cells.append(_graph("graph", dataset, "debiased", convention, profile))
            cells += [_graph("graph", dataset, "hard", convention, profile, beta=b) for b in betas]
    return cells


def _image(suite: str, method: str, profile: str, *extra: str, beta: float | None = None) -> SuiteCell:
    spec = method if beta is None else f"{method}:beta={beta:g}"
    argv = ["image", "run", "--objective", spec, "--profile", profile, "--records", "{records}", *extra]
    key = f"image/cifar10-jpeg/{method}"
    if beta is not None:
        key += f"/beta={beta:g}"
    if extra:
        key += "/" + "".join(x.strip("-") for x in extra)
    return SuiteCell(suite, f"{key}/{profile}", tuple(argv))


def image_suite(profile: str) -> list[SuiteCell]:
    cells = [_image("image", "simclr", profile), _image("image", "debiased", profile)]
    cells += [_image("image", "hard", profile, beta=b) for b in IMAGE_HARD_BETAS]
    cells.append(_image("image", "hard", profile, "--anneal-beta", beta=1.0))
    return cells


def sentence_suite(profile: str) -> list[SuiteCell]:
    return [
        SuiteCell("sentence", f"sentence/quick-thought/{method}/{profile}",
                  ("sentence", "run", "--objective", method, "--profile", profile, "--records", "{records}", "--no-progress",
                   *(() if method == "plain" else ("--no-random", "--no-minilm"))))
        for method in ("plain", "debiased", "hard")
    ]


def ablation_suite(profile: str) -> list[SuiteCell]:
    cells = []
    for dataset in ABLATION_GRAPH_DATASETS:
        cells += [_graph("ablations", dataset, "hard", "paper", profile, beta=b) for b in (0.5, 2.0, 5.0, 10.0)]
        cells += [_graph("ablations", dataset, "debiased", "paper", profile, tau_plus=t) for t in (0.1, 0.3, 0.7)]
    cells += [_image("ablations", "hard", profile, beta=b) for b in (0.25, 4.0)]
    return cells


def smoke_suite(profile: str) -> list[SuiteCell]:
    """Two one-epoch MUTAG cells (any profile): checks a launcher end to end in about a minute."""
    return [SuiteCell("smoke", f"smoke/MUTAG/{spec}", ("graph", "--dataset", "MUTAG", "--objective", spec, "--epochs", "1",
                                                       "--repeats", "1", "--out", "{records}", "--no-progress"))
            for spec in ("infograph", "jsd:tau_plus=0.5,beta=1")]


def loss_speed_suite(profile: str) -> list[SuiteCell]:
    return [SuiteCell("loss-speed", f"loss-speed/{profile}", ("benchmarks.loss_speed",))]


SUITES = {
    "graph": graph_suite,
    "image": image_suite,
    "sentence": sentence_suite,
    "ablations": ablation_suite,
    "loss-speed": loss_speed_suite,
    "smoke": smoke_suite,
}


def expand(suite: str, profile: str) -> list[SuiteCell]:
    """Cells of ``suite`` under ``profile``; ``ValueError`` lists the valid names otherwise."""
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; choose from {', '.join(SUITES)}")
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose from {', '.join(PROFILES)}")
    return SUITES[suite](profile)


def shard(cells: list[SuiteCell], index: int, count: int) -> list[SuiteCell]:
    """Cells of shard ``index`` (1-based) of ``count``: every cell lands in exactly one shard."""
    if not 1 <= index <= count:
        raise ValueError(f"shard must be I/N with 1 <= I <= N, got {index}/{count}")
    ordered = sorted(cells, key=lambda c: c.key)
    return ordered[index - 1 :: count]
