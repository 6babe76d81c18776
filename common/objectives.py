"""The objective registry as users import it: ``from common.objectives import register, Family, Param, parse_objective``.

Importing this module loads every family a run can name: the machinery (:mod:`common.registry`),
then the built-in catalogue (:mod:`common.families`), which ends by loading the plugins
(:mod:`common.plugins`), so plugins register after the built-ins whichever of these modules a
process imports first, and every process (entry points, the harness's per-cell subprocesses,
``tables``) sees the same families. No torch is imported: ``--help`` and spec validation stay instant.
"""

from __future__ import annotations

# The machinery first: a plugin imported while the catalogue loads finds these names here already.
from common.registry import (
    ALIASES,
    REGISTRY,
    Family,
    Objective,
    ObjectiveLoss,
    Param,
    Value,
    build,
    check_negatives,
    from_dict,
    listing,
    make_objective,
    names,
    parse_objective,
    register,
    unregister,
    where,
)

# isort: split
# Then the catalogue, which registers the built-in families and, at its end, the plugins.
from common import families as _catalogue  # noqa: F401

__all__ = ["ALIASES", "REGISTRY", "Family", "Objective", "ObjectiveLoss", "Param", "Value", "build", "check_negatives",
           "from_dict", "listing", "make_objective", "names", "parse_objective", "register", "unregister", "where"]
