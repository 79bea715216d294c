"""The report on a wandb dashboard: one run holding the results table, the figures and the paper's plots as
native wandb charts built from results.json (attack curves per method, robustness against compute, the
retain/forget Pareto view), so a wandb project shows them without manual work."""

from __future__ import annotations

from pathlib import Path

from undo.runs.names import BASE, DISTILLED, ORACLE, UNDO, UNLEARNED
from undo.runs.tracking import resolve_wandb, start_wandb


def _curve(entry: dict) -> tuple[list[int], list[float]]:
    steps = sorted(int(s) for s in entry.get("attack", {}))
    return steps, [entry["attack"][str(s)]["forget"] for s in steps]


def charts(results: dict) -> dict:
    """{wandb key: chart} for one report; models without an attack or a score are left out of a chart."""
    import wandb  # heavy: only a report logged to wandb needs it

    models, forget, budgets = results["models"], results["forget_metric"], results["budgets"]
    oracle = results.get("oracle", True)
    # without an oracle (WMDP) the curves are the whole story, UNDO's students included
    roles = (UNLEARNED, DISTILLED) if oracle else (UNLEARNED, DISTILLED, UNDO)
    out = {}
    for method in sorted({e["method"] for e in models if e["role"] == UNLEARNED and e["method"]}):
        shown = [
            e
            for e in models
            if e.get("attack") and (e["name"] in (BASE, ORACLE) or (e["method"] == method and e["role"] in roles))
        ]
        if not any(e["role"] == UNLEARNED for e in shown):
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


def log_report(
    results: dict, table_markdown: str, figures: list[Path], *, name: str, wandb_dir: Path, mode: str | None = None
) -> None:
    """One wandb run holding the results table (as a wandb.Table), the figures and the charts."""
    mode = resolve_wandb(mode)
    if mode == "off":
        return
    import wandb  # heavy: only a report logged to wandb needs it

    run = start_wandb(
        {"setting": results["setting"], "scale": results["scale"]},
        name=name,
        group=f"{results['setting']}-{results['scale']}-report",
        wandb_dir=wandb_dir,
        mode=mode,
    )
    columns, rows = _table(results)
    run.log(
        {
            **charts(results),
            "results": wandb.Table(columns=columns, data=rows),
            "results_markdown": wandb.Html(f"<pre>{table_markdown}</pre>"),
            **{f"figures/{p.stem}": wandb.Image(str(p)) for p in figures},
        }
    )
    run.finish()


def _table(results: dict) -> tuple[list[str], list[list]]:
    """The results table's columns and a row per model."""
    budgets = results["budgets"]
    columns = ["model", "role", "method", "alpha", "retain", "forget", *(f"forget@{b}" for b in budgets)]
    rows = [
        [
            e["name"], e["role"], e["method"], e["alpha"], e["metrics"]["retain"], e["metrics"]["forget"],
            *(e.get("attack", {}).get(str(b), {}).get("forget") for b in budgets),
            e.get("robustness", {}).get("headline"), e["compute_pct"],
        ]
        for e in results["models"]
    ]  # fmt: skip
    return [*columns, "robustness", "compute_pct"], rows
