"""The paper's plots as native wandb charts, built from results.json, so a wandb project shows them without
manual work: attack curves per method, robustness against compute, and the retain/forget Pareto view."""

from __future__ import annotations

from undo.experiment import BASE, ORACLE


def _curve(entry: dict) -> tuple[list[int], list[float]]:
    steps = sorted(int(s) for s in entry.get("attack", {}))
    return steps, [entry["attack"][str(s)]["forget"] for s in steps]


def charts(results: dict) -> dict:
    """{wandb key: chart} for one report; models without an attack or a score are left out of a chart."""
    import wandb

    models, forget, budgets = results["models"], results["forget_metric"], results["budgets"]
    oracle = results.get("oracle", True)
    # without an oracle (WMDP) the curves are the whole story, UNDO's students included
    roles = ("unlearned", "distilled") if oracle else ("unlearned", "distilled", "undo")
    out = {}
    for method in sorted({e["method"] for e in models if e["role"] == "unlearned" and e["method"]}):
        shown = [
            e
            for e in models
            if e.get("attack") and (e["name"] in (BASE, ORACLE) or (e["method"] == method and e["role"] in roles))
        ]
        if not any(e["role"] == "unlearned" for e in shown):
            continue
        xs = _curve(shown[0])[0]
        out[f"attack_curves/{method}"] = wandb.plot.line_series(
            xs=xs,
            ys=[[dict(zip(*_curve(e), strict=True)).get(x) for x in xs] for e in shown],
            keys=[e["name"] for e in shown],
            title=f"{method}: {forget} under the strongest relearning attack",
            xname="relearning steps",
        )
    if oracle:
        scored = [e for e in models if (e.get("robustness") or {}).get("headline") is not None and e["compute_pct"]]
        table = wandb.Table(
            columns=["compute_pct", "robustness", "model", "role"],
            data=[[e["compute_pct"], e["robustness"]["headline"], e["name"], e["role"]] for e in scored],
        )
        out["robustness_vs_compute"] = wandb.plot.scatter(
            table, "compute_pct", "robustness", title=f"robustness @ {budgets[1]} attack steps vs compute (% of oracle)"
        )
    attacked = [e for e in models if str(budgets[1]) in e.get("attack", {})]
    table = wandb.Table(
        columns=["retain", "forget_after_attack", "model", "role"],
        data=[[e["metrics"]["retain"], e["attack"][str(budgets[1])]["forget"], e["name"], e["role"]] for e in attacked],
    )
    out["pareto"] = wandb.plot.scatter(
        table,
        "retain",
        "forget_after_attack",
        title=f"{results['retain_metric']} before vs {forget} after {budgets[1]} attack steps",
    )
    return out
