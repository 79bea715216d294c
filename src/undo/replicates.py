"""Robustness over replicates (`run_all.py --seed S`, one output tree each): mean ± sample std per model, budget
and attacker, as a table, a JSON file and a figure with the spread drawn.

Every robustness kind of the report is combined (undo.report.ATTACK_KINDS: the grid and Optuna attackers, plain
or after a reset); a model missing from some replicates is combined over those that have it, and says how many.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

from undo.figures import robustness_spread
from undo.files import write_text
from undo.report import ATTACK_KINDS


def combine(replicates: list[dict]) -> dict:
    """{"budgets", "replicates", "models": {name: {score: {budget: {"mean", "std", "n", "values"}}}}} from the
    results.json of each replicate; std is None for a single value."""
    values: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for results in replicates:
        for model in results["models"]:
            for _, score, _ in ATTACK_KINDS.values():
                for budget, value in model.get(score, {}).get("per_budget", {}).items():
                    if value is not None:
                        values[model["name"]][score][budget].append(value)
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
    }
    return {"budgets": replicates[0]["budgets"], "replicates": len(replicates), "models": models}


def spread(point: dict | None) -> str:
    if point is None:
        return "–"
    if point["std"] is None:
        return f"{point['mean']:.2f} (n=1)"
    return f"{point['mean']:.2f} ± {point['std']:.2f} (n={point['n']})"


def markdown(combined: dict) -> str:
    budgets = [str(b) for b in combined["budgets"][1:]]
    lines = [f"# Robustness over {combined['replicates']} replicates (mean ± sample std)", ""]
    for _, score, label in ATTACK_KINDS.values():
        shown = {name: scores[score] for name, scores in combined["models"].items() if score in scores}
        if not shown:
            continue
        lines += [f"## Attacker: {label}", "", "| model | " + " | ".join(f"@{b} steps" for b in budgets) + " |"]
        lines.append("|---" * (len(budgets) + 1) + "|")
        lines += [f"| {name} | " + " | ".join(spread(s.get(b)) for b in budgets) + " |" for name, s in shown.items()]
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
