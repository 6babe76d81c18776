"""What makes two image runs the same run, asked three times: is it already recorded (``image.run.record_key``),
may this checkpoint be continued (``image.train.pretrain``), and is this harness cell done? All three compare
:func:`identity`, so the answers cannot drift apart."""

from __future__ import annotations

from typing import Any

from common.objectives import Objective

UNTRAINED = "random-init"  # the untrained encoder's method and row label

#: Config fields read from the loaded data set, not the command: functions of the settings, never part of a key.
DATA_FIELDS = ("dataset_label", "pretrain_images", "test_images")


def objective_of(config: dict[str, Any]) -> Objective | None:
    """A record's objective (None: the random-init encoder; older records: ``common.records.legacy_objective``)."""
    from common.objectives import from_dict
    from common.records import legacy_objective

    if config.get("method") == UNTRAINED:
        return None
    stored = config.get("objective") or legacy_objective("image", config)
    return None if stored is None else from_dict(stored)



#: What only pretraining reads: an untrained encoder's score does not depend on them.
PRETRAINING_FIELDS = ("epochs", "batch_size", "lr", "weight_decay", "temperature", "crop_size", "anneal_beta",
                      "sync_bn")


def run_settings(config: dict[str, Any]) -> dict[str, Any]:
    """What makes two image runs the same run, as named settings: the one identity behind the "already recorded?"
    check (:func:`identity`), the checkpoint-resume check (``image.train.pretrain``) and the harness's keys.

    Every setting but the runtime ones and those read from the data set, the objective as today's spec, and the
    epochs scored along the way only when there are some (a record from before ``--eval-at`` keeps its identity).
    The untrained encoder is one run per seed and evaluation, whatever pretraining its command would have done:
    it is scored once, not again at every temperature, batch or length a sweep visits.
    """
    from image.config import RUNTIME_FIELDS

    objective = objective_of(config)
    # the objective as today's spec stands for the folder tag ``method`` (renamed over versions) and older fields
    left_out = (*RUNTIME_FIELDS, *DATA_FIELDS, "method", "tau_plus", "beta", "objective", "eval_at")
    if objective is None:  # the untrained encoder: what only pretraining reads cannot change its score
        left_out += PRETRAINING_FIELDS
    settings = {k: v for k, v in config.items() if k not in left_out}
    if config.get("eval_at"):
        settings["eval_at"] = sorted(config["eval_at"])
    return settings | ({} if objective is None else {"objective": str(objective)})


def identity(config: dict[str, Any]) -> str:
    """:func:`run_settings` as one hashable key (records, resumed runs and the harness compare it)."""
    import json

    return json.dumps(run_settings(config), sort_keys=True)
