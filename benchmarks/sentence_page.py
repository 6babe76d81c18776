"""tables/sentence.md: quick-thought and MiniLM fine-tunes with hard negatives (prose and layout; the rows come
from ``sentence.report``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.pages import provenance, write_page
from common.protocols import protocol_of

if TYPE_CHECKING:
    from common.objectives import Objective


def _recorded_objectives(records: list[dict], profile: str) -> dict[str, Objective]:
    """Quick-thought method (its row id) -> the objective its records ran, the defaults' first.

    Records from before the objective registry name the method (a registry alias or family: its
    spec) and, some of them, ``tau_plus`` and ``beta``.
    """
    from common.objectives import from_dict, parse_objective
    from sentence.config import DEFAULT_OBJECTIVES

    objectives = {spec: parse_objective(spec) for spec in DEFAULT_OBJECTIVES}
    for r in records:
        c = r["config"]
        if c.get("profile") == profile and "method" in c:
            if "objective" in c:
                objectives[c["method"]] = from_dict(c["objective"])
            elif "tau_plus" in c:
                objectives[c["method"]] = parse_objective(c["method"]).replace(tau_plus=c["tau_plus"], beta=c["beta"])
    return objectives


def _loss_text(objective: Objective) -> str:
    """An objective's loss settings as the page writes them: HCL's two numbers, any other family by its spec."""
    values = objective.arguments()
    return f"tau_plus={values['tau_plus']:g} beta={values['beta']:g}" if {"tau_plus", "beta"} <= set(values) else str(objective)


def sentence_losses(records: list[dict], profile: str) -> dict[str, str]:
    """Quick-thought method (its row id) -> its loss settings as text, from the recorded objective."""
    return {method: _loss_text(o) for method, o in _recorded_objectives(records, profile).items()}


def _losses_line(records: list[dict], profile: str) -> str:
    """The profile's quick-thought losses as the page shows them: each objective's registry label, its settings."""
    return ", ".join(f"{o.label()} {_loss_text(o)}" for o in _recorded_objectives(records, profile).values())


def sentence_table(records: list[dict], out_dir: Path) -> Path | None:
    """tables/sentence.md: composed from sentence/report.py's rows (the computation lives there)."""
    from sentence import report
    from sentence.config import TASKS

    current = report.rows(records)
    sentence = [r for r in records if r.get("pipeline") == "sentence"]
    if not sentence:
        return None
    shown = [r for r in sentence if r["config"].get("evaluator")]
    text = ["# Sentence pipeline: quick-thought and MiniLM fine-tunes with hard negatives, SentEval-style transfer "
            "(accuracy %)", "",
            "Scores: mean ± std over seeds. avg: mean accuracy over the row's tasks (MRPC by accuracy), the score the "
            "verdicts use: MR, CR, SUBJ, MPQA, TREC and MRPC, or the subset its setting names (a quick CPU run; its rows "
            "are compared only with rows of the same setting). Δ: paired by seed, ± its standard error, * when a paired t-test alone gives p < 0.05; "
            "'beyond Holm' when it survives the Holm correction over every comparison of its block (quick-thought: "
            "debiased and hard vs plain, every method vs the untrained encoder of the same seed; fine-tunes: each "
            "variant vs plain, every variant vs the shipped model, whose single score is compared with the seeds as a "
            "one-sample test). Fine-tunes: all-MiniLM-L6-v2 on (sentence, next sentence) pairs of the training books, "
            "the same pairs, steps and seeds for every variant; loss first → last is the first step and the mean of "
            "the last 10 steps; anchors on floor: share of anchors whose debiased negative term is clamped at "
            "N e^{-1/t}. `quick` is the 2-core CPU profile.", "",
            provenance(shown) if shown else "", "", report.markdown_table(current), ""]
    for profile in sorted({r["config"]["profile"] for r in shown}):
        settings = next(r["config"]["settings"] for r in shown if r["config"]["profile"] == profile)
        train, model, ev = settings["train"], settings["model"], settings["eval"]
        tunes: dict[str, dict] = {}  # fine-tune settings per setting label (the latest record's)
        for r in shown:
            if r["config"]["profile"] == profile and r["config"]["row"].startswith("minilm-"):
                tasks = tuple(t for t in TASKS if t in r["config"]["tasks"])
                setting = report.setting_of(r["config"], protocol_of(r))
                tunes[report.setting_label(setting, tasks)] = r["config"]["settings"]["finetune"]
        text += [f"Profile `{profile}`: quick-thought GRUs embedding {model['embed_dim']} / hidden {model['hidden_dim']}, "
                 f"{train['steps']} steps of {train['batch_size']} consecutive sentences (<= {train['max_tokens']} "
                 f"tokens), Adam lr {train['lr']}, temperature {train['temperature']}; "
                 + _losses_line(sentence, profile)
                 + ". Fine-tunes: " + "; ".join(
                     f"`{label}` {tune['steps']} steps of {tune['batch_size']} pairs, AdamW lr {tune['lr']}, scale "
                     f"{tune['scale']:g}, max {tune['max_seq_length']} tokens" for label, tune in sorted(tunes.items()))
                 + "; each record's config holds its variant's loss and parameters. Evaluation: logistic "
                 f"regression on standardised embeddings, {ev['kfold']}-fold CV (MR, CR, SUBJ, MPQA) with C from an "
                 f"inner {ev['inner_kfold']}-fold search over {', '.join(map(str, ev['c_grid']))}; TREC and MRPC on "
                 f"their test splits.", ""]
    old = len(sentence) - len(shown)
    if old:
        text += [f"{old} older record(s) of the previous evaluator and the dropout-copy fine-tune (loss ~1e-4 from the "
                 "first step) are kept in tables/records/sentence.jsonl but not compared here.", ""]
    curves = report.loss_curves(records)
    if curves:
        text += ["## Fine-tune loss curves (first step, then the mean of every 10 steps)", "", *curves, ""]
    speed = report.speed_table(records)
    if speed:
        text += ["## Evaluation seconds per encoder, six tasks (`python -m benchmarks.senteval_speed`)", "",
                 "Before: the old evaluator (every call re-encodes; LogisticRegressionCV, lbfgs max_iter 200). After: "
                 "embeddings cached by content, warm-started lbfgs path over C, folds in parallel processes; same "
                 "embeddings, same folds. Seconds were measured with other jobs sharing the 2-core CPU.", "", *speed, ""]
    agreement = report.agreement_table(records)
    if agreement:
        text += ["## Why TREC and MRPC moved by more than 0.1 points (`python -m benchmarks.senteval_speed --agreement "
                 "--tasks TREC,MRPC`)", "",
                 "The same embeddings and inner folds through the old classifier (LogisticRegressionCV) and the new one, "
                 "and one fit per chosen C run to a tight tolerance from a cold start (the L2-regularised loss has one "
                 "optimum, so this is what both approximate). One TREC question is 0.2 points, one MRPC pair 0.06.", "",
                 *agreement, "",
                 "Reading: at max_iter 200 the old classifier stops before converging (the warnings above) and can "
                 "choose another C; at max_iter 10000 both choose the same C, and the new classifier's accuracy is the "
                 "tight fit's (last two columns), so the remaining differences are the old classifier's. Its final "
                 "refit starts from the mean of the folds' coefficients (LogisticRegressionCV's refit) and stops at "
                 "tol 1e-4 near them, the likely reason it ends further from the optimum (not isolated here).", ""]
    text += ["Train/eval seconds were measured with other jobs sharing the 2-core CPU and are indicative only."]
    return write_page(out_dir, "sentence.md", text)

