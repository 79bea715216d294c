"""Results from the output tree: the strongest attack per budget, robustness, compute, tables and results.json.

results.json is a stable contract: {"setting", "scale", "budgets", "selected", "models": [...]}: "selected" maps
each unlearning method to its selected teacher; "models" has one entry per finished model with name, stage, role,
method, alpha, metrics {retain, forget, <every named metric>}, and where the model was attacked: attack {budget:
{forget, lr}}, robustness {headline, per_budget}, compute_pct, student_tokens_pct; and "metrics": {name:
{higher_is_better, relative, mean_of}}, how the setting declares each metric.

A student's cost is given in two conventions, both as % of the data-filtered oracle's pretraining: compute_pct,
FLOPs with the teacher's forward counted (6N per trained token, 2N per teacher token; recorded by the distill
stage), and student_tokens_pct, the student's trained tokens over the oracle's, the teacher not counted (the public
code's step ratio; read from the summaries here, so trees of older code have it too).
"""

from __future__ import annotations

import json
from collections import defaultdict
from contextlib import suppress

from undo.errors import UserError
from undo.experiment import Experiment
from undo.io.files import write_text
from undo.reporting.families import families, linear_probes, probe_table, table
from undo.reporting.scoring import best_attack, reference_unlearned, robustness
from undo.runs.identity import changed_inputs
from undo.runs.names import MATCHED, ORACLE, UNLEARNED, selected
from undo.runs.rundir import run_identity
from undo.runs.selection import resolve

MODEL_STAGES = ("pretrain", "unlearn", "distill")
# The attacks of a model and its robustness under them, per attacker (the learning-rate grid, or Optuna's search:
# relearn's `search`) and whether every attacked model's forget-vocabulary embedding rows were first re-initialised
# (relearn's reset_forget_rows, so that no score comes only from pushed-down logits): (attacker, reset) ->
# (results.json key of the best attack per budget, of the robustness, and the column label of results.md).
ATTACKERS = {
    ("grid", False): ("attack", "robustness", "grid"),
    ("grid", True): ("attack_after_reset", "robustness_after_reset", "grid, reset"),
    ("optuna", False): ("attack_optuna", "robustness_optuna", "optuna"),
    ("optuna", True): ("attack_optuna_after_reset", "robustness_optuna_after_reset", "optuna, reset"),
}


def score_attacks(entry: dict, reference: dict | None, oracle: dict | None, key: str, headline: int) -> dict | None:
    """Robustness at each budget where the model, its unlearn-only reference and the oracle all were attacked
    (attacks of kind `key`); None when one of them was not."""
    if any(m is None or key not in m for m in (entry, reference, oracle)):
        return None
    per_budget = {
        step: robustness(point["forget"], reference[key][step]["forget"], oracle[key][step]["forget"])
        for step, point in entry[key].items()
        if step in reference[key] and step in oracle[key]
    }
    return {
        "reference": reference["name"],
        "headline_budget": headline,
        "headline": per_budget.get(str(headline)),
        "per_budget": per_budget,
    }


def train_curve(metrics_file) -> list[dict]:
    """[(step, training loss)] from a run's JSONL records: for distillation the loss is the KL to the teacher."""
    rows = []
    for number, line in enumerate(open(metrics_file, encoding="utf-8"), 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            raise UserError(f"{metrics_file} line {number} is damaged: rerun that run with --force") from None
    return [{"step": r["step"], "kl": r["loss"]} for r in rows if r.get("kind") == "train"]


def check_consistent(exp: Experiment) -> None:
    """Refuse to report runs whose inputs changed under them (e.g. a student of a teacher that was rerun)."""

    problems = [
        f"  {ref}: {'; '.join(reasons)}"
        for stage in (*MODEL_STAGES, "relearn")
        for ref in exp.finished_runs(stage)
        if (reasons := changed_inputs(exp, run_identity(exp, ref)))
    ]
    if problems:
        raise UserError(
            f"{len(problems)} finished run(s) read inputs that have changed since, so no report was written:\n"
            + "\n".join(problems)
            + f"\nrerun them: {exp.command('all')} --rerun-stale"
        )


def collect(exp: Experiment) -> dict:
    """results.json's content from the output tree (see the module docstring)."""
    check_consistent(exp)
    setting = exp.setting
    attacks = attacks_by_model(exp)
    entries = [entry(exp, stage, ref, attacks) for stage in MODEL_STAGES for ref in exp.finished_runs(stage)]
    budgets = list(exp.scale.attack_budgets)
    has_oracle = score(exp, entries, budgets[1])
    teachers = {}
    for method in sorted({e["method"] for e in entries if e["role"] == UNLEARNED}):
        with suppress(UserError):  # no run of the method keeps the retain metric: nothing selected
            teachers[method] = resolve(exp, selected(method), record=False)
    return {
        "setting": setting.name,
        "scale": exp.scale.name,
        "retain_metric": setting.retain.name,
        "forget_metric": setting.forget.name,
        "metrics": {name: metric.describe() for name, metric in setting.metrics.items()},
        "budgets": budgets,
        "oracle": has_oracle,
        "selected": teachers,
        "models": entries,
        "families": families(exp, entries),
        "linear_probes": linear_probes(exp),
    }


def attacks_by_model(exp: Experiment) -> dict[tuple[str, tuple[str, bool]], list[dict]]:
    """{(attacked run, (attacker, reset)): [{"lr", "curve", "run"}, ...]}: every attack of the scale's attack
    family (every trial of a search that kept the retain metric)."""
    attacks = defaultdict(list)
    for ref in exp.finished_runs("relearn"):
        summary = exp.summary(ref)
        if summary.get("family", "finetune") != exp.scale.attack_family:
            continue
        attacker = (summary.get("attacker", "grid"), bool(summary.get("reset_forget_rows")))
        trials = [t for t in summary.get("trials", []) if t.get("feasible", True)]  # those that kept retain
        runs = trials if "trials" in summary else [{"lr": summary["lr"], "curve": summary["curve"]}]
        attacks[summary["target"], attacker] += [{**run, "run": ref} for run in runs]
    return attacks


def student_tokens_pct(exp: Experiment, stage: str, summary: dict) -> float | None:
    """A student's trained tokens as % of the oracle's pretraining tokens (see the module's docstring); None
    outside distillation or without an oracle."""
    if stage != "distill" or "tokens" not in summary or ORACLE not in exp.finished_runs("pretrain"):
        return None
    return 100.0 * summary["tokens"] / exp.summary(ORACLE)["tokens"]


def entry(exp: Experiment, stage: str, ref: str, attacks: dict) -> dict:
    """A model's entry: what it is, its metrics before any attack, and the strongest attack per budget."""
    summary = exp.summary(ref)
    metrics = summary["metrics"]
    retain, forget = exp.setting.retain.name, exp.setting.forget.name
    model = {
        "name": ref,
        "stage": stage,
        "role": summary.get("role", stage),
        "method": summary.get("method"),
        "alpha": summary.get("alpha"),
        "beta": summary.get("beta"),
        "seed": summary.get("seed"),
        "teacher": summary.get("teacher"),
        "steps": summary["steps"],
        "metrics": {"retain": metrics[retain], "forget": metrics[forget], **metrics},
        "compute_pct": summary.get("compute_pct"),
        "student_tokens_pct": student_tokens_pct(exp, stage, summary),
    }
    if model["role"] == MATCHED:
        model["kl_curve"] = train_curve(exp.finished(ref) / "metrics.jsonl")
    for attacker, (key, _, _) in ATTACKERS.items():
        if (ref, attacker) in attacks:
            model[key] = {str(s): v for s, v in best_attack(attacks[ref, attacker], exp.setting.forget).items()}
    if (ref, ("grid", False)) in attacks:
        model["attack_runs"] = len(attacks[ref, ("grid", False)])
    return model


def score(exp: Experiment, entries: list[dict], headline: int) -> bool:
    """Add each attacked model's robustness under each attacker (with an oracle) or how much forget performance
    came back (without one, as in WMDP); whether the tree has an oracle."""
    by_name = {e["name"]: e for e in entries}
    has_oracle = ORACLE in by_name
    for model in entries:
        if "attack" in model and not has_oracle:
            start = model["attack"].get("0", {}).get("forget")
            if start is not None:
                model["recovered"] = {step: point["forget"] - start for step, point in model["attack"].items()}
        elif any(key in model for key, _, _ in ATTACKERS.values()):
            try:
                reference = by_name.get(resolve(exp, reference_unlearned(model)))
            except UserError:  # no unlearned model of that method yet
                reference = None
            for key, robust, _ in ATTACKERS.values():
                if scored := score_attacks(model, reference, by_name.get(ORACLE), key, headline):
                    model[robust] = scored
    return has_oracle


def _fmt(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def budget_value(entry: dict, budget: int, key: str = "forget"):
    point = entry.get("attack", {}).get(str(budget))
    return None if point is None else point[key]


def _row(cells: list) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def markdown(results: dict) -> str:
    budgets = results["budgets"]
    retain, forget = results["retain_metric"], results["forget_metric"]
    oracle = results.get("oracle", True)
    score = "robust" if oracle else "recovered"
    head = [
        "model", "role", "method", "alpha", "steps", retain, forget,
        *(f"{forget} @{b}" for b in budgets), *(f"{score} @{b}" for b in budgets[1:]),
        "compute % (FLOPs)", "student tokens %",
    ]  # fmt: skip
    explain = (
        "robustness = (F - F_unlearned) / (F_oracle - F_unlearned). Cost as % of the oracle's pretraining: compute % "
        "counts FLOPs, the teacher's forward included (6N per student token, 2N per teacher token); student tokens % "
        "counts the student's trained tokens only (the public code's step ratio)."
        if oracle
        else f"recovered = {forget} after the attack minus before it (no data-filtered oracle in this setting)."
    )
    lines = [
        f"# Results: {results['setting']} / {results['scale']}",
        "",
        f"Forget metric after the strongest relearning attack (best learning rate per step budget); {explain}",
        "",
        _row(head),
        _row(["---"] * len(head)),
    ]
    for e in results["models"]:
        robust = e.get("robustness", {}).get("per_budget", {}) if oracle else e.get("recovered", {})
        lines.append(_row([
            e["name"], e["role"], e["method"] or "", "" if e["alpha"] is None else _fmt(e["alpha"], 2), e["steps"],
            _fmt(e["metrics"]["retain"]), _fmt(e["metrics"]["forget"]),
            *(_fmt(budget_value(e, b)) for b in budgets), *(_fmt(robust.get(str(b)), 2) for b in budgets[1:]),
            _fmt(e["compute_pct"], 1), _fmt(e["student_tokens_pct"], 1),
        ]))  # fmt: skip
    lines += _attackers_table(results["models"], budgets)
    lines += table(results)
    lines += probe_table(results)
    details = [m for m in results["metrics"] if m not in (retain, forget)]
    if details:
        lines += [
            "",
            "Every metric before any attack:",
            "",
            _row(["model", *details]),
            _row(["---"] * (len(details) + 1)),
        ]
        lines += [_row([e["name"], *(_fmt(e["metrics"].get(m)) for m in details)]) for e in results["models"]]
    return "\n".join(lines) + "\n"


def _attackers_table(models: list[dict], budgets: list[int]) -> list[str]:
    """Robustness per attacker (grid, Optuna; plain, after a reset) for the models scored by more than the grid."""
    kinds = [(score, label) for _, score, label in ATTACKERS.values() if any(score in e for e in models)]
    if len(kinds) < 2:
        return []
    shown = [e for e in models if sum(score in e for score, _ in kinds) > 1]
    head = ["model", *(f"robust @{b} ({label})" for _, label in kinds for b in budgets[1:])]
    lines = [
        "",
        "Robustness under each attacker: the learning-rate grid or Optuna's search, on the model as it is or after "
        "every attacked model's forget-vocabulary embedding rows were re-initialised:",
        "",
        _row(head),
        _row(["---"] * len(head)),
    ]
    for e in shown:
        cells = [_fmt(e.get(score, {}).get("per_budget", {}).get(str(b)), 2) for score, _ in kinds for b in budgets[1:]]
        lines.append(_row([e["name"], *cells]))
    return lines


def write(exp: Experiment, results: dict) -> dict:
    """Write results.json and results.md under outputs/<setting>/<scale>/results/; returns their paths."""
    folder = exp.root / "results"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        paths = {"json": folder / "results.json", "markdown": folder / "results.md"}
        write_text(paths["json"], json.dumps(results, indent=1) + "\n")
        write_text(paths["markdown"], markdown(results))
    except OSError as err:
        raise UserError(f"cannot write the results into {folder} ({err.strerror}): make it writable") from None
    return paths


def metrics_table(exp: Experiment, refs: list[str]) -> str:
    """A markdown table of every metric of the setting for each run."""
    names = list(exp.setting.metrics)
    lines = [_row(["run", *names]), _row(["---"] * (len(names) + 1))]
    lines += [_row([ref, *(_fmt(exp.summary(ref)["metrics"].get(n)) for n in names)]) for ref in refs]
    return "\n".join(lines)
