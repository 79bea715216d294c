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
            score: {
                budget: {
                    "mean": statistics.mean(v),
                    "std": statistics.stdev(v) if len(v) > 1 else None,
                    "n": len(v),
                    "values": v,
                }
                for budget, v in sorted(per_budget.items(), key=lambda item: int(item[0]))
            }
            for score, per_budget in scores.items()
        }
        for name, scores in values.items()
        if scores
    }
    return {"budgets": replicates[0]["budgets"], "replicates": len(replicates), "models": models}


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
    return "\n".join(lines)


def write(replicates: list[dict], folder: Path) -> dict[str, Path]:
    """replicates.json, replicates.md and replicates.png in `folder`."""
    combined = combine(replicates)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "replicates.json", "markdown": folder / "replicates.md"}
    write_text(paths["json"], json.dumps(combined, indent=1) + "\n")
    write_text(paths["markdown"], markdown(combined))
    paths["figure"] = robustness_spread(combined, folder / "replicates.png")
    return paths
