"""The attack suite's view (`--attacks suite`): for each attacked model and attack family, the strongest attack's
forget metric at the scale's last budget, its robustness against the oracle and the unlearned teacher under the
same family's strongest attack, and the worst case over families.

A family is what undo.stages.relearn.family names (finetune, lora, probe, quantize-..., with +retain-only,
+few-shot-N, +held-out). A searched attack's trials count only where they kept the retain metric; a
quantization attack has one point, at step 0, which stands for every budget.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import suppress
from itertools import pairwise

from undo.attacks import linear_probe
from undo.errors import UserError
from undo.evaluate.metrics import Metric
from undo.experiment import Experiment
from undo.reporting.scoring import MIN_GAP, best_attack, reference_unlearned, robustness
from undo.runs.names import BASE, ORACLE
from undo.runs.selection import resolve


def attacks_by_family(exp: Experiment) -> dict[tuple[str, str], list[dict]]:
    """{(attacked run, family): [{"lr", "curve", "run"}, ...]}: every attack of every family."""
    attacks = defaultdict(list)
    for ref in exp.finished_runs("relearn"):
        summary = exp.summary(ref)
        if summary.get("reset_forget_rows") or summary.get("attacker") == linear_probe.ATTACKER:
            continue  # the reset control is its own attacker (report.ATTACKERS); a probe reads no forget metric
        trials = [t for t in summary.get("trials", []) if t.get("feasible", True)]
        runs = trials if "trials" in summary else [{"lr": summary.get("lr"), "curve": summary["curve"]}]
        attacks[summary["target"], summary.get("family", "finetune")] += [{**run, "run": ref} for run in runs]
    return attacks


def linear_probes(exp: Experiment) -> dict[str, dict] | None:
    """{attacked run: its linear probe's held-out accuracy per layer and the majority digit's} (undo.attacks.
    linear_probe); None without probes."""
    found = {}
    for ref in exp.finished_runs("relearn"):
        summary = exp.summary(ref)
        if summary.get("attacker") == linear_probe.ATTACKER:
            found[summary["target"]] = summary["metrics"]
    return found or None


def strongest(runs: list[dict], forget: Metric, budget: int) -> tuple[dict, dict[int, float]]:
    """The strongest forget value at `budget` (or the last step before it: a quantized model's step 0), the run
    that reached it and where the attack started (None for an attack that does not train: its step 0 is after);
    and the strongest attack's curve: the best value at every step up to there."""
    curve = {step: best["forget"] for step, best in best_attack(runs, forget).items() if step <= budget}
    step = max(curve)
    run = next(r["run"] for r in runs for p in r["curve"] if p["step"] == step and p[forget.name] == curve[step])
    start = curve.get(0) if step > 0 else None
    return {"forget": curve[step], "step": step, "run": run, "start": start}, curve


ACCURACY_FLOOR = 0.05  # accuracy points: a smaller change is within the noise of a few hundred items


def moved(forget: Metric, before: float, after: float) -> bool:
    """Whether an attack brought the forget metric back beyond noise: by MIN_GAP relatively (CE), by
    ACCURACY_FLOOR points (accuracy). Robustness under a family that moves nothing (quantization, often) would
    only restate how far apart the models were before the attack."""
    return forget.degradation(before, after) >= (MIN_GAP if forget.relative else ACCURACY_FLOOR)


def recovery(curve: dict[int, float], base: float) -> dict | None:
    """How the strongest attack's curve (forget value per step, from step 0) closes the gap between where it
    started and the base model, which never forgot: the first step at which it has closed 50% and 90% of it (None:
    not within the curve), and the area under the closed share over the curve's steps, as a share of their span
    (0: nothing came back; 1: all of it at once). None for a curve of one point or no gap."""
    steps = sorted(curve)
    start = curve[steps[0]]
    if len(steps) < 2 or base == start:
        return None
    closed = [(step, (curve[step] - start) / (base - start)) for step in steps]
    first = {share: next((step for step, c in closed if c >= share), None) for share in (0.5, 0.9)}
    area = sum((b - a) * (ca + cb) / 2 for (a, ca), (b, cb) in pairwise(closed))
    return {"steps_50": first[0.5], "steps_90": first[0.9], "area": area / (steps[-1] - steps[0])}


def families(exp: Experiment, entries: list[dict]) -> dict | None:
    """{"budget", "families", "models": {model: {family: {"forget", "step", "run", "robustness", "recovery"},
    "worst": ...}}} for every model attacked by more than one family (None when none was). Robustness is left out
    where the family's strongest attack did not move the unlearned reference beyond noise (`moved`); recovery
    (`recovery`, against the base model's forget metric before any attack) where the base is in the tree, with
    its area as a share of the oracle's under the same family."""
    attacks = attacks_by_family(exp)
    budget = exp.scale.attack_budgets[-1]
    by_name = {e["name"]: e for e in entries}
    base = by_name[BASE]["metrics"]["forget"] if BASE in by_name else None
    targets = defaultdict(dict)
    for (target, family), runs in attacks.items():
        point, curve = strongest(runs, exp.setting.forget, budget)
        point["recovery"] = recovery(curve, base) if base is not None else None
        targets[target][family] = point
    suite = {t: f for t, f in targets.items() if len(f) > 1}
    if not suite:
        return None
    anchor = ORACLE if ORACLE in targets else None
    forget = exp.setting.forget
    models = {}
    for target, found in suite.items():
        reference = None
        if target in by_name and anchor is not None:
            with suppress(UserError):  # no unlearned model of that method
                reference = resolve(exp, reference_unlearned(by_name[target]))
        for family, point in found.items():
            ends = [targets.get(r, {}).get(family) for r in (reference, anchor)]
            if all(ends) and moved(forget, _start(ends[0], by_name, reference), ends[0]["forget"]):
                point["robustness"] = robustness(point["forget"], ends[0]["forget"], ends[1]["forget"])
            oracle_area = (ends[1] or {}).get("recovery") or {}
            if point["recovery"] and oracle_area.get("area"):
                point["recovery"]["area_vs_oracle"] = point["recovery"]["area"] / oracle_area["area"]
        scored = [p["robustness"] for p in found.values() if p.get("robustness") is not None]
        strongest_family = max(found, key=lambda f: found[f]["forget"] * (1 if forget.higher_is_better else -1))
        models[target] = {**found, "worst": {"robustness": min(scored) if scored else None, "family": strongest_family}}
    names = sorted({f for found in suite.values() for f in found})
    return {"budget": budget, "anchor": anchor or BASE, "families": names, "models": models}


def _start(point: dict, by_name: dict, ref: str) -> float:
    """Where a family's attack on `ref` started: its curve's step 0, or the model's own forget metric."""
    return point["start"] if point["start"] is not None else by_name[ref]["metrics"]["forget"]


def table(results: dict) -> list[str]:
    """results.md's section: each model's strongest forget value per family (robustness in brackets)."""
    view = results.get("families")
    if not view:
        return []
    names, forget = view["families"], results["forget_metric"]
    head = ["model", *names, "worst robustness", "strongest family"]
    lines = [
        "",
        f"The attack suite: {forget} after each family's strongest attack at {view['budget']} steps (quantization: "
        "no training), robustness against the oracle and the unlearned teacher under that family's strongest "
        "attack in brackets:",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for model, found in view["models"].items():
        worst = found["worst"]["robustness"]
        cells = [_cell(found.get(name)) for name in names]
        cells += ["–" if worst is None else f"{worst:.2f}", found["worst"]["family"]]
        lines.append("| " + " | ".join([model, *cells]) + " |")
    return lines


def probe_table(results: dict) -> list[str]:
    """results.md's section: each probed model's held-out accuracy per layer."""
    probes = results.get("linear_probes")
    if not probes:
        return []
    layers = {k for found in probes.values() for k in found if k != "probe_majority"}
    layers = sorted(layers, key=lambda k: int(k.removeprefix("probe_layer")))
    head = ["model", *(layer.removeprefix("probe_") for layer in layers), "majority digit"]
    lines = [
        "",
        "Linear probes on the frozen hidden states (the answer's last digit at the end of each forget problem's "
        "prompt; trained on one part of the facts, accuracy on the facts it never saw):",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for model, found in probes.items():
        cells = [f"{found[layer]:.3f}" for layer in layers] + [f"{found['probe_majority']:.3f}"]
        lines.append("| " + " | ".join([model, *cells]) + " |")
    return lines


def _cell(point: dict | None) -> str:
    if point is None:
        return "–"
    robust = point.get("robustness")
    return f"{point['forget']:.3f}" + ("" if robust is None else f" ({robust:.2f})")
