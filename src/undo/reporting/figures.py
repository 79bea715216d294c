"""The paper's figure types drawn from results.json: relearning curves per method, oracle matching, UNDO's
robustness against compute, and retain/forget Pareto scatters at three attack budgets."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from undo.runs.names import BASE, DISTILLED, MATCHED, ORACLE, RESET, UNDO, UNLEARNED
from undo.unlearning import METHODS

ROLE_STYLE = {
    "base": ("tab:gray", "o"),
    "oracle": ("black", "*"),
    UNLEARNED: ("tab:red", "s"),
    DISTILLED: ("tab:blue", "D"),
    UNDO: ("tab:green", "^"),
    MATCHED: ("tab:purple", "v"),
    RESET: ("tab:orange", "P"),
}


def _pyplot():
    import matplotlib  # heavy: only the report draws

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def envelope(entry: dict) -> tuple[list[int], list[float]]:
    steps = sorted(int(s) for s in entry.get("attack", {}))
    return steps, [entry["attack"][str(s)]["forget"] for s in steps]


def _curve(ax, entry: dict | None, label: str, **style) -> None:
    if entry is not None and entry.get("attack"):
        ax.plot(*envelope(entry), label=label, **style)


def relearning_per_method(results: dict, by_name: dict, path: Path) -> Path:
    """Per method: its selected teacher, its fully distilled student, the oracle and the base under attack; without
    an oracle (WMDP) also the UNDO students of the method's teacher."""
    plt = _pyplot()
    methods = [m for m in METHODS if m in results.get("selected", {})] or list(METHODS)
    fig, axes = plt.subplots(1, len(methods), figsize=(4.2 * len(methods), 3.6), sharey=True, squeeze=False)
    axes = axes[0]
    for ax, method in zip(axes, methods, strict=False):
        unlearned = by_name.get(results.get("selected", {}).get(method))  # the method's selected teacher
        _curve(ax, unlearned, "Unlearn", color="tab:red", marker="s", ms=3)
        _curve(
            ax,
            by_name.get(f"distill/full-{method}"),
            "Unlearn-and-Distill",
            color="tab:blue",
            marker="D",
            ms=3,
        )
        _curve(ax, by_name.get(ORACLE), "Data filtering", color="black", marker="*", ms=4)
        _curve(ax, by_name.get(BASE), "Base (no unlearning)", color="tab:gray", ls="--")
        if not results.get("oracle", True):
            teacher = results.get("selected", {}).get(method)
            for e in results["models"]:
                if e["role"] == UNDO and e["teacher"] == teacher:
                    _curve(ax, e, f"UNDO alpha {e['alpha']:g}", marker="o", ms=3, alpha=0.8)
        ax.set_title(method)
        ax.set_xlabel("relearning steps")
    axes[0].set_ylabel(f"{results['forget_metric']} (best attack)")
    axes[0].legend(fontsize=8)
    return _save(fig, path)


def oracle_matching(results: dict, by_name: dict, path: Path) -> Path:
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    for name, label, color in (
        ("distill/match-base", "student: base model", "tab:orange"),
        ("distill/match-random", "student: random init", "tab:purple"),
    ):
        entry = by_name.get(name)
        if entry and entry.get("kl_curve"):
            left.plot(
                [p["step"] for p in entry["kl_curve"]],
                [p["kl"] for p in entry["kl_curve"]],
                label=label,
                color=color,
            )
        _curve(right, entry, label, color=color, marker="o", ms=3)
    _curve(right, by_name.get(ORACLE), "oracle (teacher)", color="black", marker="*", ms=4)
    left.set(xlabel="distillation steps", ylabel="KL(oracle || student)", yscale="log", title="Oracle matching")
    right.set(xlabel="relearning steps", ylabel=f"{results['forget_metric']} (best attack)", title="Relearning")
    left.legend(fontsize=8)
    right.legend(fontsize=8)
    return _save(fig, path)


def undo_robustness_compute(results: dict, by_name: dict, path: Path) -> Path:
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.5, 3.8))
    budget = results["budgets"][1]
    groups = defaultdict(list)
    for e in results["models"]:
        if e["role"] == UNDO and e.get("robustness", {}).get("headline") is not None:
            groups[e["alpha"]].append(e)
    alphas = sorted(groups)
    for alpha in alphas:
        rob = [e["robustness"]["headline"] for e in groups[alpha]]
        cost = [e["compute_pct"] or 0.0 for e in groups[alpha]]
        left.errorbar(np.mean(cost), np.mean(rob), yerr=np.std(rob), xerr=np.std(cost), fmt="^", color="tab:green")
        left.annotate(
            f"α={alpha:g}",
            (np.mean(cost), np.mean(rob)),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=8,
        )
    full = by_name.get("distill/full-maxent")
    if full and full.get("robustness", {}).get("headline") is not None:
        left.plot(
            full["compute_pct"] or 0.0,
            full["robustness"]["headline"],
            "D",
            color="tab:blue",
            label="full distillation",
        )
        left.legend(fontsize=8)
    left.axhline(1.0, color="black", lw=0.8, ls=":")
    left.axhline(0.0, color="tab:red", lw=0.8, ls=":")
    left.set(
        xlabel="compute (% of oracle pretraining)",
        ylabel=f"robustness @ {budget} attack steps",
        title="UNDO: robustness vs compute",
    )
    cmap = plt.get_cmap("viridis")
    for i, alpha in enumerate(alphas):
        _curve(right, groups[alpha][0], f"UNDO α={alpha:g}", color=cmap(i / max(len(alphas) - 1, 1)))
    unlearned = by_name.get(next((e["robustness"]["reference"] for a in alphas for e in groups[a]), ""))
    _curve(right, unlearned, "Unlearn (teacher)", color="tab:red", ls="--")
    _curve(right, by_name.get(ORACLE), "Data filtering", color="black", ls="--")
    right.set(xlabel="relearning steps", ylabel=f"{results['forget_metric']} (best attack)", title="Relearning")
    right.legend(fontsize=7)
    return _save(fig, path)


def pareto(results: dict, path: Path) -> Path:
    plt = _pyplot()
    budgets = results["budgets"]
    fig, axes = plt.subplots(1, len(budgets), figsize=(4.2 * len(budgets), 3.8), sharey=True)
    for ax, budget in zip(axes, budgets, strict=False):
        shown = set()
        for e in results["models"]:
            point = e.get("attack", {}).get(str(budget))
            if point is None:
                continue
            color, marker = ROLE_STYLE.get(e["role"], ("tab:cyan", "x"))
            ax.scatter(
                e["metrics"]["retain"],
                point["forget"],
                color=color,
                marker=marker,
                label=None if e["role"] in shown else e["role"],
            )
            shown.add(e["role"])
        ax.set(title=f"after {budget} attack steps", xlabel=f"{results['retain_metric']} (before attack)")
    axes[0].set_ylabel(f"{results['forget_metric']} after attack")
    axes[0].legend(fontsize=8)
    return _save(fig, path)


def robustness_spread(combined: dict, path: Path) -> Path:
    """Robustness over replicates (undo.reporting.replicates.combine) of every model at each budget under the grid
    attacker: the mean as a bar per budget, the sample std as an error bar, each replicate's value as a dot."""
    plt = _pyplot()
    scored = {name: s["robustness"] for name, s in combined["models"].items() if "robustness" in s}
    budgets = [str(b) for b in combined["budgets"][1:]]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(scored) * len(budgets)), 4.2))
    width = 0.8 / max(len(budgets), 1)
    for k, budget in enumerate(budgets):
        xs = [i + (k - (len(budgets) - 1) / 2) * width for i in range(len(scored))]
        points = [s.get(budget) for s in scored.values()]
        means = [p["mean"] if p else 0.0 for p in points]
        errors = [(p["std"] or 0.0) if p else 0.0 for p in points]
        ax.bar(xs, means, width, yerr=errors, capsize=2, label=f"after {budget} attack steps", alpha=0.75)
        for x, p in zip(xs, points, strict=True):
            if p:
                ax.plot([x] * len(p["values"]), p["values"], "k.", ms=3)
    ax.axhline(1.0, color="black", lw=0.8, ls="--")
    ax.axhline(0.0, color="gray", lw=0.8)
    ax.set_xticks(range(len(scored)), list(scored), rotation=60, ha="right", fontsize=7)
    ax.set_ylim(-0.5, 1.5)  # 0 = unlearning alone, 1 = data filtering; a few noisy ratios fall far outside
    ax.set_ylabel("robustness")
    ax.set_title(
        f"Robustness over {combined['replicates']} replicates (bars: mean ± std; dots: replicates; axis cut at -0.5)"
    )
    ax.legend(fontsize=8)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def draw_all(results: dict, folder: Path) -> list[Path]:
    """Every figure whose data exists; returns the written paths."""
    by_name = {e["name"]: e for e in results["models"]}
    folder.mkdir(parents=True, exist_ok=True)
    paths = [relearning_per_method(results, by_name, folder / "relearning_per_method.png")]
    if results.get("oracle", True):  # the other two read the oracle
        paths += [
            oracle_matching(results, by_name, folder / "oracle_matching.png"),
            undo_robustness_compute(results, by_name, folder / "undo_robustness_compute.png"),
        ]
    return [*paths, pareto(results, folder / "pareto.png")]
