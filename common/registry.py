"""The objective registry's machinery: every way of handling negatives, declared once and taken by name.

An objective is a family name plus its parameters, written ``name`` or ``name:key=value,...``
(``hard:tau_plus=0.1,beta=2``). Every pipeline parses the same spec, validates it against the
family's declared ranges, records it (name and every parameter) and builds its loss here, so
adding a family here is all it takes for images, graphs and sentences to run it.

This module imports no torch: ``--help`` and spec validation stay instant. :func:`build`
imports the family's implementation when a run needs it.

A family's implementation is a function in the *masked form* (lightly/PyGCL's contract)::

    loss(anchors (R, d), candidates (C, d), pos_mask (R, C), neg_mask (R, C), *,
         temperature, row_weights=None, **params) -> mean loss

and, optionally, a faster *two-view* form ``loss(z1, z2, *, temperature, gather_distributed,
**params)`` (SimCLR's 2B anchors); without one, the two views go through the masked form.
Graph-only families (InfoGraph's JSD estimator) declare ``local_global`` instead.

Import it through :mod:`common.objectives`, which also loads the catalogue of built-in families
(:mod:`common.families`) and the plugins: this module alone holds an empty registry. The catalogue
and the plugins import it, never the other way round (it names the plugins' variable in one
warning, imported when that warning is given).

Validation has one layer: a family's :class:`Param` ranges (and its ``constraint``) check every
parameter when a spec is parsed, and the masked core (:func:`common.masked.prepare`) checks the
temperature; implementations trust both and check only what depends on the batch (MoCHi's
``num_hard`` against an anchor's negatives, an empty ring band): :func:`check_negatives`.
"""

from __future__ import annotations

import importlib
import inspect
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.paths import REPO_ROOT

Value = float | str


@dataclass(frozen=True)
class Param:
    """One parameter of a family: default, valid range (or choices) and what it means."""

    default: Value
    help: str
    low: float | None = None
    high: float | None = None
    high_open: bool = False  # the range is [low, high) rather than [low, high]
    choices: tuple[str, ...] = ()
    low_open: bool = False  # the range is (low, ...] rather than [low, ...]
    integer: bool = False  # whole numbers only (a count, k)

    def check(self, family: str, name: str, raw: Value) -> Value:
        """``raw`` (text from a spec, or a number) as a valid value; ``ValueError`` naming the range otherwise."""
        if self.choices:
            if raw not in self.choices:
                raise ValueError(f"{family}: {name} must be one of {', '.join(self.choices)}, got {raw!r}")
            return raw
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"{family}: {name} must be a number in {self.range_text()}, got {raw!r}") from None
        inside = math.isfinite(value) and (self.low is None or (value > self.low if self.low_open else value >= self.low))
        inside = inside and (self.high is None or (value < self.high if self.high_open else value <= self.high))
        if not inside or (self.integer and value != int(value)):
            kind = "an integer " if self.integer else ""
            raise ValueError(f"{family}: {name} must be {kind}in {self.range_text()}, got {raw}")
        return value

    def range_text(self) -> str:
        if self.choices:
            return "{" + ", ".join(self.choices) + "}"
        low = "(-inf" if self.low is None else ("(" if self.low_open else "[") + f"{self.low:g}"
        high = "inf)" if self.high is None else f"{self.high:g}" + (")" if self.high_open else "]")
        return f"{low}, {high}"


@dataclass(frozen=True)
class Family:
    """A registered objective family: its parameters, implementation paths, citation and reference code."""

    name: str
    summary: str
    citation: str
    #: the reference code the implementation is checked against ("repository: file"), or "paper only"
    reference: str = "paper only"
    #: what runs here differently from that reference ("" when nothing)
    deviation: str = ""
    params: dict[str, Param] = field(default_factory=dict)
    fixed: dict[str, Value] = field(default_factory=dict)  # passed to the implementation, not settable
    masked: str | None = None  # "module:function" of the masked form
    two_view: str | None = None  # "module:function" of a faster two-view form
    local_global: str | None = None  # "module:function" of a graph-only local-global estimator
    #: the implementation takes a ``generator``: :func:`build` seeds one from the ``seed`` parameter, and it
    #: advances with every call (fresh draws each step, reproducible from the spec)
    seeded: bool = False
    #: a check across parameters: the error text for invalid values, None when they are fine
    constraint: Callable[[dict[str, Value]], str | None] | None = None
    #: parameters of earlier versions of the family, with their defaults then: stored records that hold them
    #: still read back (:func:`from_dict`, as history that cannot run), and are labelled as they were
    retired: dict[str, Value] = field(default_factory=dict)


def _fmt(value: Value) -> str:
    """Shortest text that reads back as the same value (``1`` for 1.0, ``0.1`` for 0.1)."""
    if isinstance(value, str):
        return value
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


@dataclass(frozen=True, order=True)
class Objective:
    """A family name and *all* its parameters (defaults filled in), so equal objectives compare equal."""

    name: str
    params: tuple[tuple[str, Value], ...] = ()

    def __str__(self) -> str:
        return self.name + (":" + ",".join(f"{k}={_fmt(v)}" for k, v in self.params) if self.params else "")

    def __getitem__(self, key: str) -> Value:
        return dict(self.params)[key]

    @property
    def family(self) -> Family:
        return REGISTRY[self.name]

    def arguments(self) -> dict[str, Value]:
        """What the implementation receives: the family's fixed values and these parameters."""
        return {**self.family.fixed, **dict(self.params)}

    def to_dict(self) -> dict[str, Any]:
        """What a run record stores: ``{"name": ..., "params": {...}}``."""
        return {"name": self.name, "params": dict(self.params)}

    def replace(self, **params: Value) -> Objective:
        """The same family with some parameters changed (validated), e.g. an annealed beta."""
        return make_objective(self.name, **{**dict(self.params), **params})

    @property
    def retired(self) -> bool:
        """Whether this objective holds parameters the family no longer has (a record of an earlier version)."""
        return any(k not in self.family.params for k, _ in self.params)

    def label(self, aliases: dict[str, str] | None = None) -> str:
        """Short display name: the family (or a pipeline's alias for it) and the parameters off their defaults.

        A record of a family's earlier version names its retired parameters always (``fnc k=1``), so it never labels
        like today's default; an objective no registered family knows (a plugin not loaded) shows its stored spec.
        """
        if self.name not in REGISTRY:
            return str(self)
        family = self.family
        defaults = {k: p.default for k, p in family.params.items()}
        changed = [f"{k}={_fmt(v)}" for k, v in self.params if k in family.retired or v != defaults.get(k)]
        name = (aliases or {}).get(self.name, self.name)
        return name + (" " + ",".join(changed) if changed else "")


REGISTRY: dict[str, Family] = {}

#: Names users know from the papers and the pipelines' earlier flags, as specs.
ALIASES: dict[str, str] = {}


def register(family: Family, *aliases: tuple[str, str]) -> Family:
    """Add ``family`` (and ``(alias, spec)`` pairs) to the registry; names must be new."""
    for name in (family.name, *(a for a, _ in aliases)):
        if name in REGISTRY or name in ALIASES:
            raise ValueError(f"objective {name!r} is registered already")
    if (family.masked or family.two_view) and family.local_global:
        raise ValueError(f"{family.name}: a family is either contrastive or local-global, not both")
    REGISTRY[family.name] = family
    ALIASES.update(aliases)
    return family


def unregister(name: str) -> None:
    """Remove a family and the aliases that point to it (tests register throwaway families)."""
    REGISTRY.pop(name, None)
    for alias in [a for a, spec in ALIASES.items() if spec.split(":")[0] == name]:
        del ALIASES[alias]


def make_objective(name: str, **params: Value) -> Objective:
    """A validated :class:`Objective` of family ``name``: unknown or out-of-range parameters raise ``ValueError``."""
    family = REGISTRY.get(name)
    if family is None:
        raise ValueError(f"unknown objective {name!r}; choose from {', '.join(names())}")
    unknown = sorted(set(params) - set(family.params))
    if unknown:
        valid = ", ".join(family.params) or "none"
        raise ValueError(f"{name}: unknown parameter {', '.join(unknown)}; its parameters: {valid}")
    values = {k: p.check(name, k, params.get(k, p.default)) for k, p in family.params.items()}
    problem = family.constraint(values) if family.constraint else None
    if problem:
        raise ValueError(f"{name}: {problem}")
    return Objective(name, tuple(sorted(values.items())))


def parse_objective(text: str) -> Objective:
    """``"hard:tau_plus=0.1,beta=2"`` (or an alias such as ``simclr``) as a validated :class:`Objective`."""
    name, _, rest = text.strip().partition(":")
    params: dict[str, Value] = {}
    if name in ALIASES:
        alias = parse_objective(ALIASES[name])
        name, params = alias.name, dict(alias.params)
    given: set[str] = set()
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"objective {text!r}: expected key=value after the name, got {item!r}")
        if key in given:  # the last would win silently: a typo or a merge gone wrong
            raise ValueError(f"objective {text!r}: {key} is given twice")
        given.add(key)
        params[key] = value.strip()
    return make_objective(name, **params)


_UNKNOWN: set[str] = set()  # objectives of records that no registered family knows, warned about once


def from_dict(stored: dict[str, Any]) -> Objective:
    """The inverse of :meth:`Objective.to_dict` (records, checkpoints); ``ValueError`` when it does not validate.

    A record of an earlier version of a family (one of its ``retired`` parameters) reads back as it was
    stored, unvalidated: it labels and compares as history, and :func:`build` refuses to run it.
    """
    if not isinstance(stored, dict) or not isinstance(stored.get("params", {}), dict):
        raise ValueError(f"not a stored objective: {stored!r}")
    name, params = str(stored.get("name")), stored.get("params", {})
    family = REGISTRY.get(name)
    if family is None and name not in ALIASES:
        if name not in _UNKNOWN:
            from common.plugins import ENV as PLUGINS_ENV

            _UNKNOWN.add(name)
            print(f"warning: records name objective {name!r}, which no registered family has here (a plugin not "
                  f"loaded? see {PLUGINS_ENV}); they are shown by their stored spec", file=sys.stderr)
        return Objective(name, tuple(sorted(params.items())))
    if family is not None and set(params) & set(family.retired):
        return Objective(name, tuple(sorted(params.items())))
    return make_objective(name, **params)


def names() -> list[str]:
    return [*REGISTRY, *ALIASES]


def _load(path: str) -> Callable[..., Any]:
    module, _, function = path.partition(":")
    return getattr(importlib.import_module(module), function)


def where(family: Family | str) -> dict[str, str]:
    """Each implementation form of ``family`` (masked, two_view, local_global) as ``"path:line"`` from the repository root."""
    family = REGISTRY[family] if isinstance(family, str) else family
    places = {}
    for form in ("masked", "two_view", "local_global"):
        path = getattr(family, form)
        if path:
            function = inspect.unwrap(_load(path))
            file = Path(inspect.getsourcefile(function)).resolve()
            shown = file.relative_to(REPO_ROOT) if file.is_relative_to(REPO_ROOT) else file
            places[form] = f"{shown}:{inspect.getsourcelines(function)[1]}"
    return places


class ObjectiveLoss:
    """The loss of one objective at one temperature, in every form its family has.

    Calling it with two views ``(z1, z2)`` gives the SimCLR loss; :meth:`masked` takes explicit
    positive/negative masks; :meth:`local_global` scores graphs (node rows against the batch's
    graph embeddings, each node's own graph positive). Parameters may change between steps
    through :meth:`set` (annealing), validated like any spec.
    """

    def __init__(self, objective: Objective, *, temperature: float, gather_distributed: bool = False) -> None:
        if objective.retired:
            raise ValueError(f"{objective} is a record of an earlier version of {objective.name} (history): it cannot "
                             f"run; its parameters now: {', '.join(objective.family.params) or 'none'}")
        self.objective, self.temperature, self.gather_distributed = objective, float(temperature), gather_distributed
        family = objective.family
        self._masked = _load(family.masked) if family.masked else None
        self._two_view = _load(family.two_view) if family.two_view else None
        self._local_global = _load(family.local_global) if family.local_global else None
        self._generator = None  # a seeded family's random draws, created on the inputs' device at the first call

    def set(self, **params: Value) -> None:
        self.objective = self.objective.replace(**params)

    def _kwargs(self, device: Any = None) -> dict[str, Any]:
        kwargs = {**self.objective.arguments(), "temperature": self.temperature}
        if self.objective.family.seeded:
            import torch

            if self._generator is None or self._generator.device != torch.device(device):
                self._generator = torch.Generator(device=device).manual_seed(int(kwargs["seed"]))
            kwargs["generator"] = self._generator
        return kwargs

    def _contrastive(self, form: str) -> None:
        if self._masked is None and self._two_view is None:
            raise ValueError(f"objective {self.objective.name} is a graph local-global estimator; it has no {form} form")

    def __call__(self, z1: Any, z2: Any) -> Any:
        """Mean loss over the 2B anchors of two ``(B, d)`` views (negatives gathered across ranks if asked)."""
        self._contrastive("two-view")
        if self._two_view is not None:
            return self._two_view(z1, z2, gather_distributed=self.gather_distributed, **self._kwargs(z1.device))
        from common.views import two_view_loss

        return two_view_loss(self._masked, z1, z2, gather_distributed=self.gather_distributed, **self._kwargs(z1.device))

    def masked(self, anchors: Any, candidates: Any, pos_mask: Any, neg_mask: Any, row_weights: Any = None) -> Any:
        """Mean loss over the anchors that have a positive; ``row_weights`` count each row that many times."""
        self._contrastive("masked")
        if self._masked is None:
            raise ValueError(f"objective {self.objective.name} has only a two-view form")
        extra = {} if row_weights is None else {"row_weights": row_weights}
        return self._masked(anchors, candidates, pos_mask, neg_mask, **extra, **self._kwargs(anchors.device))

    def local_global(self, local: Any, graph: Any, batch: Any, counts: Any = None) -> Any:
        """Graph objective: node rows ``(n, d)`` against graph embeddings ``(G, d)``; ``batch[i]`` is row i's graph."""
        if self._local_global is not None:
            kwargs = {k: v for k, v in self._kwargs(local.device).items() if k != "temperature"}
            return self._local_global(local, graph, batch, counts=counts, **kwargs)
        from common.local_global import infonce_local_global

        return infonce_local_global(self.masked, local, graph, batch, counts=counts)

    def __repr__(self) -> str:
        return f"ObjectiveLoss({self.objective}, temperature={self.temperature:g})"


def build(objective: Objective | str, *, temperature: float, gather_distributed: bool = False) -> ObjectiveLoss:
    """The loss of ``objective`` (an :class:`Objective` or a spec) at ``temperature``."""
    if isinstance(objective, str):
        objective = parse_objective(objective)
    return ObjectiveLoss(objective, temperature=temperature, gather_distributed=gather_distributed)


def check_negatives(objective: Objective, counts: Any, *, temperature: float) -> None:
    """``ValueError`` when ``objective`` cannot score an anchor with one of ``counts`` negatives.

    Some parameters are valid only against a batch (MoCHi's num_hard at most the negatives, a
    narrow ring band holding one of them): pipelines and benchmarks call this with
    the negatives per anchor their batches give, before training, so a bad spec is a one-line
    error rather than a traceback mid-run. Draws from its own generator, not the global one.
    """
    if objective.family.local_global:
        return
    import torch

    loss = build(objective, temperature=temperature)
    generator = torch.Generator().manual_seed(0)
    for count in sorted({int(c) for c in counts}):
        if count < 1:
            continue
        candidates = torch.randn(count + 1, 4, generator=generator)
        pos_mask = (torch.arange(count + 1) == 0).unsqueeze(0)
        try:
            loss.masked(candidates[:1], candidates, pos_mask, ~pos_mask)
        except ValueError as err:
            raise ValueError(f"{objective}: {err} (an anchor of this run has {count} negatives)") from None


def listing() -> str:
    """The registry as text: every family, its parameters with defaults and ranges, aliases and citation."""
    lines = []
    for family in REGISTRY.values():
        aliases = [a for a, spec in ALIASES.items() if spec.split(":")[0] == family.name]
        kind = "graph local-global" if family.local_global else "contrastive"
        lines.append(f"{family.name}  ({kind}{'; aliases: ' + ', '.join(aliases) if aliases else ''})")
        lines.append(f"    {family.summary}")
        for key, p in family.params.items():
            whole = " (integer)" if p.integer else ""
            lines.append(f"    {key} = {_fmt(p.default)}  in {p.range_text()}{whole}: {p.help}")
        lines.append(f"    cite: {family.citation}")
        lines.append(f"    reference: {family.reference}")
        if family.deviation:
            lines.append(f"    deviation: {family.deviation}")
    return "\n".join(lines)
