"""Profiles and objectives of the graph pipeline, all defaults in one place (no torch: ``--help`` stays instant)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from common.objectives import Objective, from_dict, make_objective
from common.settings import option
from common.stats import UNTRAINED, config_label

STAGED = ("MUTAG", "PTC_MR", "ENZYMES", "PROTEINS", "DD", "IMDB-BINARY", "IMDB-MULTI", "REDDIT-BINARY")


@dataclass(frozen=True)
class Profile:
    """A protocol: model, optimiser and how many runs; every field is also a ``python -m graph`` flag."""

    epochs: int = option(200, "training epochs", low=1)
    repeats: int = option(10, "repeats per objective (repeat r uses seed + r for every objective: paired)", low=1)
    batch_size: int = option(128, "graphs per batch", low=2)
    hidden: int = option(32, "GIN hidden size", low=1)
    layers: int = option(3, "GIN layers", low=1)
    lr: float = option(0.001, "Adam learning rate", above=0)
    betas: tuple[float, ...] = option((1.0,), "betas of the default grid's hard objectives", low=0)
    # Of the InfoNCE local-global estimator (contrastive objectives): cosine scores / 0.2, GraphCL's and
    # PyGCL's usual value for graph-level InfoNCE. The JSD estimator has no temperature.
    temperature: float = option(0.2, "temperature of the InfoNCE local-global estimator (contrastive objectives)",
                                above=0)


PROFILES = {
    # The released protocol: 200 epochs, betas 1/2/10 (and 0), 10 repeats for the SVM score.
    "paper": Profile(betas=(1.0, 2.0, 10.0)),
    # Same model and optimiser, fewer epochs and repeats: all 8 staged sets in under an hour on 2 CPU cores.
    "quick": Profile(epochs=10, repeats=3, betas=(1.0,)),
}

RELEASED_TAU_PLUS = 0.5  # the released graph code's value for every debiased/hard run
#: The baseline every graph variant is paired with: InfoGraph, the JSD estimator with uniform negatives (``jsd``).
INFOGRAPH = make_objective("jsd")
CONVENTIONS = ("paper", "reference")


def reproduction_objectives(profile: Profile) -> list[Objective]:
    """The reproduction's grid: InfoGraph, then debiased and hard (the profile's betas) JSD in both conventions."""
    grid = [INFOGRAPH]
    for convention in CONVENTIONS:
        grid.append(make_objective("jsd", tau_plus=RELEASED_TAU_PLUS, convention=convention))
        grid += [make_objective("jsd", tau_plus=RELEASED_TAU_PLUS, beta=b, convention=convention)
                 for b in profile.betas]
    return grid


@dataclass(frozen=True)
class Cell:
    """One training run: a data set, an objective (None: the untrained encoder) and a repeat (which fixes the seed)."""

    dataset: str
    objective: Objective | None
    repeat: int
    seed: int
    profile: str
    epochs: int
    batch_size: int
    hidden: int
    layers: int
    lr: float
    temperature: float | None  # of the InfoNCE estimator; None for JSD and untrained cells
    eval_at: tuple[int, ...] = ()  # epochs scored along the way (``--eval-at``); none for the untrained encoder

    @property
    def label(self) -> str:
        """The run's row label, the registry's as on every page: the objective's (``jsd beta=2,tau_plus=0.5``,
        ``hard beta=2``), with ``t=...`` when it ran off its profile's temperature (``common.stats.config_label``)."""
        if self.objective is None:
            return UNTRAINED
        return config_label(self.objective.label(), self.temperature, PROFILES[self.profile].temperature)

    def to_config(self) -> dict[str, Any]:
        """The record's config: every field, the objective as name and parameters."""
        return {**asdict(self), "objective": None if self.objective is None else self.objective.to_dict()}

    @property
    def key(self) -> tuple:
        """Identity of the run: a finished one with the same key is not run again. A run scored along the way
        (``eval_at``) is its own run, since a plain one never recorded those points; without it the key is the one
        every earlier record has."""
        key = (self.dataset, str(self.objective), self.repeat, self.seed, self.profile, self.epochs, self.batch_size,
               self.hidden, self.layers, self.lr, self.temperature)
        return (*key, self.eval_at) if self.eval_at else key


def cell_of(config: dict[str, Any]) -> Cell:
    """The cell a record ran (a record from before the objective registry: ``common.records.legacy_objective``)."""
    from common.records import legacy_objective

    stored = config["objective"] if "objective" in config else legacy_objective("graph", config)
    objective = None if stored is None else from_dict(stored)
    fields = {k: config[k] for k in ("dataset", "repeat", "seed", "profile", "epochs", "batch_size", "hidden", "layers", "lr")}
    eval_at = tuple(sorted(config.get("eval_at") or ())) if objective is not None else ()
    return Cell(objective=objective, temperature=config.get("temperature"), eval_at=eval_at, **fields)


def expand_cells(
    datasets: list[str],
    objectives: list[Objective],
    *,
    profile: str,
    seed: int,
    settings: Profile | None = None,
    eval_at: tuple[int, ...] = (),
) -> list[Cell]:
    """All runs for a grid, each repeat sharing its seed across objectives (paired comparisons).

    ``settings`` are the profile's with the command line's changes (default: the profile's own).
    An ``untrained`` cell per data set and repeat scores the freshly initialised encoder.
    """
    p = settings or PROFILES[profile]
    base = dict(profile=profile, batch_size=p.batch_size, hidden=p.hidden, layers=p.layers, lr=p.lr)
    runs: list[Objective | None] = [None, *dict.fromkeys(objectives)]
    return [
        Cell(dataset, objective, repeat, seed + repeat, epochs=0 if objective is None else p.epochs,
             temperature=None if objective is None or objective.family.local_global else p.temperature,
             eval_at=() if objective is None else tuple(eval_at), **base)
        for dataset in datasets
        for repeat in range(p.repeats)
        for objective in runs
    ]
