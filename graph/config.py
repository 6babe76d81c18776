"""Profiles and methods of the graph pipeline, all defaults in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    epochs: int
    repeats: int
    batch_size: int = 128
    hidden: int = 32
    layers: int = 3
    lr: float = 0.001
    betas: tuple[float, ...] = (1.0,)


PROFILES = {
    # The released protocol: 200 epochs, betas 1/2/10 (and 0), 10 repeats for the SVM score.
    "paper": Profile(epochs=200, repeats=10, betas=(1.0, 2.0, 10.0)),
    # Same model and optimiser, fewer epochs and repeats: all 8 staged sets in under an hour on 2 CPU cores.
    "quick": Profile(epochs=10, repeats=3, betas=(1.0,)),
}

METHODS = ("infograph", "debiased", "hard")
CONVENTIONS = ("paper", "reference")
DEFAULT_TAU_PLUS = 0.5  # the released graph code's value for every debiased/hard run


@dataclass(frozen=True)
class Cell:
    """One training run: a data set, an objective and a repeat (which fixes the seed)."""

    dataset: str
    method: str
    convention: str
    tau_plus: float
    beta: float
    repeat: int
    seed: int
    profile: str
    epochs: int
    batch_size: int
    hidden: int
    layers: int
    lr: float

    @property
    def label(self) -> str:
        if self.method in ("infograph", "untrained"):
            return self.method
        suffix = f" b={self.beta:g}" if self.method == "hard" else ""
        return f"{self.method}{suffix} [{self.convention}]"


def expand_cells(
    datasets: list[str],
    methods: list[str],
    *,
    profile: str,
    conventions: list[str],
    betas: list[float],
    tau_plus: float,
    repeats: int,
    epochs: int,
    seed: int,
) -> list[Cell]:
    """All runs for a grid, each repeat sharing its seed across methods (paired comparisons).

    An ``untrained`` cell per data set and repeat scores the freshly initialised encoder.
    """
    p = PROFILES[profile]
    base = dict(profile=profile, epochs=epochs, batch_size=p.batch_size, hidden=p.hidden, layers=p.layers, lr=p.lr)
    objectives: list[tuple[str, str, float, float]] = [("untrained", "paper", 0.0, 0.0)]
    for method in methods:
        if method == "infograph":
            objectives.append(("infograph", "paper", 0.0, 0.0))
        else:
            for convention in conventions:
                for beta in betas if method == "hard" else [0.0]:
                    objectives.append((method, convention, tau_plus, beta))
    return [
        Cell(dataset, method, convention, tau, beta, repeat, seed + repeat, **{**base, "epochs": 0 if method == "untrained" else epochs})
        for dataset in datasets
        for repeat in range(repeats)
        for method, convention, tau, beta in objectives
    ]
