"""Teacher selection: within one method's sweep, the strongest forgetting that keeps the retain metric close.

Rule: among finished runs of the method, those whose retain metric is within `tolerance` of the base model's
(relative for CE, absolute for accuracy: as the metric compares values); of these, the one whose forget metric
is worst (highest CE / lowest accuracy). The choice is written to <stage>/selected.json so a reader sees which
run later stages used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from undo.errors import UserError
from undo.evaluate.metrics import RETAIN_TOLERANCE, Metric
from undo.io.files import read_json, write_json
from undo.runs.names import SELECTED

if TYPE_CHECKING:  # annotations only: the experiment sits above this layer
    from undo.experiment import Experiment


def select(
    records: list[dict], base: dict, retain: Metric, forget: Metric, tolerance: float = RETAIN_TOLERANCE
) -> dict | None:
    """The selected record, or None when no record keeps the retain metric within tolerance.

    Each record has "name" and "metrics" {retain: ..., forget: ...}; `base` is the base model's metrics."""
    within = lambda r: retain.degradation(r["metrics"][retain.name], base[retain.name]) <= tolerance  # noqa: E731
    eligible = [r for r in records if within(r)]
    if not eligible:
        return None
    # strongest forgetting = the worst forget performance
    return max(eligible, key=lambda r: forget.degradation(r["metrics"][forget.name], base[forget.name]))


def resolve(exp: Experiment, ref: str, tolerance: float = RETAIN_TOLERANCE, record: bool = True) -> str:
    """Turn "<stage>/selected:<method>" into "<stage>/<run-name>"; other references pass through. `record`
    writes the choice to selected.json."""
    stage, _, name = ref.partition("/")
    if not name.startswith(SELECTED):
        return ref
    method = name[len(SELECTED) :]
    setting = exp.setting
    records = []
    for run in exp.finished_runs(stage):
        summary = exp.summary(run)
        if summary.get("method") == method:
            records.append({"name": run, "metrics": summary["metrics"]})
    if not records:
        raise UserError(f"no finished {stage} run of method {method!r}: run `{exp.command(stage)}` first")
    base = exp.summary(exp.summary(records[0]["name"])["base"])["metrics"]
    chosen = select(records, base, setting.retain, setting.forget, tolerance)
    if chosen is None:
        raise UserError(
            f"no {method} run keeps {setting.retain.name} within {tolerance:g} of the base model: "
            "add smaller learning rates to the unlearning grid"
        )
    if record:
        path = exp.root / stage / "selected.json"
        chosen_all = read_json(path, "delete it: it is rewritten on the next selection") if path.is_file() else {}
        chosen_all[method] = {
            "run": chosen["name"],
            "metrics": chosen["metrics"],
            "tolerance": tolerance,
            "candidates": len(records),
        }
        write_json(path, chosen_all)
    return chosen["name"]
