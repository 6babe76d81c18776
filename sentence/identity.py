"""What makes two sentence runs the same run, asked twice: is it already recorded (``sentence.run.record_key``), and
may this checkpoint be continued (``sentence.train``, ``sentence.finetune`` through
``common.resume.resume_checkpoint``)? Both compare :func:`identity`, so the two answers cannot drift apart."""

from __future__ import annotations

from typing import Any

from common.objectives import Objective
from sentence.config import objective_tag

#: Identity fields a quick-thought checkpoint may change on resume: what is evaluated and recorded, the schedule,
#: and the sections other commands use.
QUICK_THOUGHT_RUNTIME = ("tasks", "evaluator", "settings.profile", "settings.train.steps",
                         "settings.train.eval_every", "settings.train.checkpoint_every", "settings.eval",
                         "settings.finetune")
#: The same for a MiniLM fine-tune: the step count may grow, the curve's window only regroups the record, and the
#: quick-thought sections do not touch it.
FINETUNE_RUNTIME = ("tasks", "evaluator", "settings.profile", "settings.model", "settings.train",
                    "settings.eval", "settings.finetune.steps", "settings.finetune.curve_every")


#: Training settings the untrained rows (the random encoder, the shipped MiniLM) never read: they are scored once
#: per seed, not again at every temperature, learning rate or length a sweep visits. The corpus, the model and the
#: batches of the neighbour accuracy (batch size, tokens, validation batches) stay.
TRAINING_ONLY = ("temperature", "lr", "steps", "grad_clip", "eval_every", "checkpoint_every")


def row_id(prefix: str, objective: Objective) -> str:
    """A trained row's id, ``qt-hard`` or ``minilm-hard-tau_plus=0``: the encoder and the objective it ran."""
    return f"{prefix}-{objective_tag(objective)}"


def row_of(config: dict[str, Any]) -> str:
    """A record's row: quick-thought and fine-tune rows named by the objective they ran (``qt-hard``,
    ``minilm-hard-tau_plus=0``), whatever an older record stored; the others (random, minilm) as stored."""
    from common.objectives import from_dict

    row = str(config.get("row", ""))
    if config.get("objective") and row.startswith(("qt-", "minilm-")):
        return row_id(row.split("-")[0], from_dict(config["objective"]))
    return row


def identity(config: dict[str, Any]) -> dict[str, Any]:
    """The one identity of a sentence run, from a record's config or a checkpoint's: its row (the encoder, and the
    objective by its tag, so every parameter off its default counts and an older record's format does not), settings
    (seed and profile included), tasks and evaluator, and the ``--eval-at`` steps when there are any (so a record
    without them keeps the identity it had). A checkpoint holds this as its ``config``.

    Checkpoints written before this identity stored their settings flat (quick-thought: every section beside the
    objective; fine-tunes: seed, objective or an older ``variant``, corpus and fine-tune settings); they are read in
    today's shape, so a run begun then still continues.
    """
    if "encoder" in config:  # already an identity (a checkpoint's config)
        return config
    if "row" not in config and "settings" not in config:
        config = _flat_checkpoint(config)
    encoder, _, objective = row_of(config).partition("-")
    settings = config.get("settings")
    if not objective and isinstance(settings, dict):  # an untrained row: what only training reads is not its identity
        train = {k: v for k, v in settings.get("train", {}).items() if k not in TRAINING_ONLY}
        settings = {k: v for k, v in settings.items() if k != "finetune"} | {"train": train}
    found = {"encoder": encoder, "objective": objective or None, "settings": settings,
             "tasks": config.get("tasks"), "evaluator": config.get("evaluator")}
    if config.get("eval_at"):
        found["eval_at"] = sorted(config["eval_at"])
    return found


def _flat_checkpoint(saved: dict[str, Any]) -> dict[str, Any]:
    from common.objectives import from_dict
    from common.records import legacy_objective

    objective = saved["objective"] if "objective" in saved else legacy_objective("sentence", saved)
    prefix = "qt" if "train" in saved else "minilm"
    settings = {k: v for k, v in saved.items() if k not in ("objective", "variant", "loss")}
    return {"row": row_id(prefix, from_dict(objective)), "settings": settings}
