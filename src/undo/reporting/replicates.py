"""Robustness over replicates (`run_all.py --seed S`, one output tree each): mean ± sample std per model, budget
and attacker, as a table, a JSON file and a figure with the spread drawn.

Every robustness of the report is combined (undo.reporting.report.ATTACKERS: the grid and Optuna attackers,
plain or after a reset), and so is the forget metric each attacker reached and the retain metric before any attack:
where a ratio is left out (the oracle and the unlearned model too close, as after a reset), the metric still
says how far each model relearned. A model missing from some replicates is combined over those that have it, and
says how many.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

from undo.io.files import write_text
from undo.reporting.figures import robustness_spread
from undo.reporting.report import ATTACKERS


def combine(replicates: list[dict]) -> dict:
    """{"budgets", "replicates", "models": {name: {score: {budget: {"mean", "std", "n", "values"}}}}} from the
    results.json of each replicate; std is None for a single value."""
    values: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for results in replicates:
        for model in results["models"]:
            scores = values[model["name"]]
            for attack, score, _ in ATTACKERS.values():
                for budget, value in model.get(score, {}).get("per_budget", {}).items():
                    if value is not None:
                        scores[score][budget].append(value)
                for budget, point in model.get(attack, {}).items():
                    scores[attack][budget].append(point["forget"])
            if "retain" in model.get("metrics", {}):
                scores["retain"]["0"].append(model["metrics"]["retain"])
    models = {
        name: {
            score: {budget: stats(v) for budget, v in sorted(per_budget.items(), key=lambda item: int(item[0]))}
            for score, per_budget in scores.items()
        }
        for name, scores in values.items()
        if scores
    }
    combined = {"budgets": replicates[0]["budgets"], "replicates": len(replicates), "models": models}
    return {**combined, "families": families(replicates)}


def stats(values: list[float]) -> dict:
    return {
        "mean": statistics.mean(values),
        "std": statistics.stdev(values) if len(values) > 1 else None,
        "n": len(values),
        "values": values,
    }


def families(replicates: list[dict]) -> dict | None:
    """The attack suite's view over the replicates that have one: {model: {family or "worst": {"robustness",
    "forget"}}}, each a spread. A selected teacher is named by its method (unlearn/selected:maxent), whichever of
    its runs a replicate selected. None without a suite."""
    values: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for results in replicates:
        alias = {run: f"unlearn/selected:{method}" for method, run in results.get("selected", {}).items()}
        for target, found in ((results.get("families") or {}).get("models") or {}).items():
            for family, point in found.items():
                scores = values[alias.get(target, target)][family]
                if point.get("robustness") is not None:
                    scores["robustness"].append(point["robustness"])
                if "forget" in point:
                    scores["forget"].append(point["forget"])
    if not values:
        return None
    return {
        model: {family: {key: stats(v) for key, v in found.items()} for family, found in by_family.items()}
        for model, by_family in values.items()
    }


def spread(point: dict | None, digits: int = 2) -> str:
    if point is None:
        return "–"
    if point["std"] is None:
        return f"{point['mean']:.{digits}f} (n=1)"
    return f"{point['mean']:.{digits}f} ± {point['std']:.{digits}f} (n={point['n']})"


def markdown(combined: dict) -> str:
    budgets = [str(b) for b in combined["budgets"]]
    lines = [f"# Robustness over {combined['replicates']} replicates (mean ± sample std)", ""]
    tables = [(score, f"Attacker: {label}", budgets[1:], 2) for _, score, label in ATTACKERS.values()]
    tables += [
        (attack, f"Forget metric after the attack, attacker: {label}", budgets, 3)
        for attack, _, label in ATTACKERS.values()
    ]
    tables.append(("retain", "Retain metric before any attack", ["0"], 3))
    for key, title, columns, digits in tables:
        shown = {name: scores[key] for name, scores in combined["models"].items() if key in scores}
        if not shown:
            continue
        lines += [f"## {title}", "", "| model | " + " | ".join(f"@{b} steps" for b in columns) + " |"]
        lines.append("|---" * (len(columns) + 1) + "|")
        lines += [
            f"| {name} | " + " | ".join(spread(s.get(b), digits) for b in columns) + " |" for name, s in shown.items()
        ]
        lines.append("")
    return "\n".join(lines + family_tables(combined.get("families")))


def family_tables(view: dict | None) -> list[str]:
    """The suite's robustness (the families that scored a model) and forget metric per model and family, and the
    worst robustness over families."""
    if not view:
        return []
    names = sorted({f for found in view.values() for f in found if f != "worst"})
    scored = [f for f in names if any("robustness" in found.get(f, {}) for found in view.values())]
    lines = []
    for key, title, digits, columns in (
        ("robustness", "Robustness under each family's strongest attack (the attack suite)", 2, [*scored, "worst"]),
        ("forget", "Forget metric after each family's strongest attack (the attack suite)", 3, names),
    ):
        lines += [f"## {title}", "", "| model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
        for model, found in view.items():
            cells = [spread(found.get(f, {}).get(key), digits) if f in found else "–" for f in columns]
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def write(replicates: list[dict], folder: Path) -> dict[str, Path]:
    """replicates.json, replicates.md and replicates.png in `folder`."""
    combined = combine(replicates)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "replicates.json", "markdown": folder / "replicates.md"}
    write_text(paths["json"], json.dumps(combined, indent=1) + "\n")
    write_text(paths["markdown"], markdown(combined))
    paths["figure"] = robustness_spread(combined, folder / "replicates.png")
    return paths
