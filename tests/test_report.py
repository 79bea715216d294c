"""The report: best-attack envelope and robustness by hand, and a full report from a fake output tree."""

from __future__ import annotations

import json

import pytest
from planting import plant_run

from undo.evaluate.metrics import Metric
from undo.reporting.dashboard import log_report
from undo.reporting.figures import draw_all
from undo.reporting.report import best_attack, collect, reference_unlearned, robustness, write


def test_best_attack_takes_the_lowest_ce_per_step_and_its_lr():
    attacks = [
        {
            "lr": 1e-3,
            "curve": [{"step": 0, "ko_ce": 8.0}, {"step": 5, "ko_ce": 6.0}, {"step": 10, "ko_ce": 5.5}],
        },
        {
            "lr": 3e-3,
            "curve": [{"step": 0, "ko_ce": 8.0}, {"step": 5, "ko_ce": 6.5}, {"step": 10, "ko_ce": 4.0}],
        },
    ]
    best = best_attack(attacks, Metric("ko_ce", higher_is_better=False))
    assert best == {
        0: {"forget": 8.0, "lr": 1e-3},
        5: {"forget": 6.0, "lr": 1e-3},
        10: {"forget": 4.0, "lr": 3e-3},
    }
    accuracy = [{"lr": 1, "curve": [{"step": 0, "mul": 0.2}]}, {"lr": 2, "curve": [{"step": 0, "mul": 0.6}]}]
    assert best_attack(accuracy, Metric("mul", higher_is_better=True)) == {0: {"forget": 0.6, "lr": 2}}
    assert best_attack(accuracy, Metric("mul", higher_is_better=False)) == {0: {"forget": 0.2, "lr": 1}}


def test_robustness_by_hand():
    assert robustness(forget_model=6.0, forget_unlearned=4.0, forget_oracle=8.0) == pytest.approx(0.5)
    assert robustness(4.0, 4.0, 8.0) == 0.0 and robustness(8.0, 4.0, 8.0) == 1.0
    assert robustness(0.5, 0.9, 0.1) == pytest.approx(0.5)  # accuracy: lower forget accuracy is more robust
    assert robustness(5.0, 4.0, 4.0) is None
    assert robustness(6.24, 6.14, 6.22) is None  # a gap of 0.08 nats (1.3% of the oracle's CE) is noise


def plant(exp, ref: str, summary: dict) -> None:
    (plant_run(exp, ref, summary) / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": s, "kind": "train", "loss": 1.0 / s}) + "\n" for s in (10, 20))
    )


def model_summary(en, ko, **extra):
    return {"metrics": {"en_ce": en, "ko_ce": ko}, "steps": 10, "flops": 100.0, **extra}


def attack(ref, lr, curve):
    return {
        "metrics": {"ko_ce": curve[-1], "en_ce": 4.0},
        "steps": 4,
        "flops": 1.0,
        "role": "attack",
        "target": ref,
        "lr": lr,
        "curve": [{"step": 2 * i, "ko_ce": v} for i, v in enumerate(curve)],
    }


def test_report_from_a_fake_tree_writes_every_table_and_figure(exp):
    plant(exp, "pretrain/base", model_summary(4.0, 4.0, role="base"))
    plant(exp, "pretrain/oracle", model_summary(4.1, 9.0, role="oracle", tokens=800))
    teachers = {}
    for method in ("graddiff", "maxent", "rmu"):
        teachers[method] = f"unlearn/{method}-lr1"
        plant(
            exp,
            teachers[method],
            model_summary(4.1, 7.5, role="unlearned", method=method, base="pretrain/base"),
        )
        plant(
            exp,
            f"distill/full-{method}",
            model_summary(4.2, 7.4, role="distilled", method=method, teacher=teachers[method], compute_pct=50.0),
        )
    for alpha, cost, tokens in ((0.2, 10.0, 60), (0.8, 40.0, 240)):
        plant(
            exp,
            f"distill/undo-maxent-a{alpha}-s0",
            model_summary(
                4.2,
                7.4,
                role="undo",
                method="maxent",
                teacher=teachers["maxent"],
                alpha=alpha,
                beta=0.1,
                seed=0,
                compute_pct=cost,
                tokens=tokens,
            ),
        )
    for student in ("base", "random"):
        plant(
            exp,
            f"distill/match-{student}",
            model_summary(4.1, 8.9, role="matched", teacher="pretrain/oracle"),
        )
    curves = {
        "pretrain/base": [4.0, 3.9, 3.8],
        "pretrain/oracle": [9.0, 7.0, 6.0],
        **{t: [7.5, 4.5, 4.0] for t in teachers.values()},
        **{f"distill/full-{m}": [7.4, 6.5, 5.5] for m in teachers},
        "distill/undo-maxent-a0.2-s0": [7.4, 5.0, 4.5],
        "distill/undo-maxent-a0.8-s0": [7.4, 6.0, 5.0],
        "distill/match-base": [8.9, 5.0, 4.5],
        "distill/match-random": [8.9, 6.8, 5.9],
    }
    for i, (ref, curve) in enumerate(curves.items()):
        plant(exp, f"relearn/r{i}-a", attack(ref, 1e-3, curve))
        plant(exp, f"relearn/r{i}-b", attack(ref, 3e-3, [v + 0.1 for v in curve]))

    results = collect(exp)
    paths = write(exp, results)
    figures = draw_all(results, exp.root / "results")
    assert all(p.is_file() and p.stat().st_size > 5000 for p in figures)
    assert {p.name for p in figures} == {
        "relearning_per_method.png",
        "oracle_matching.png",
        "undo_robustness_compute.png",
        "pareto.png",
    }
    table = paths["markdown"].read_text()
    assert "distill/undo-maxent-a0.8-s0" in table and "robust @2" in table
    saved = json.loads(paths["json"].read_text())
    assert saved["selected"] == {m: f"unlearn/{m}-lr1" for m in ("graddiff", "maxent", "rmu")}
    entry = next(e for e in saved["models"] if e["name"] == "distill/undo-maxent-a0.8-s0")
    assert entry["attack"]["2"] == {"forget": 6.0, "lr": 1e-3}
    assert entry["robustness"]["headline"] == pytest.approx((6.0 - 4.5) / (7.0 - 4.5))
    assert entry["metrics"]["retain"] == 4.2 and entry["metrics"]["forget"] == 7.4 and entry["compute_pct"] == 40.0
    # both conventions: the recorded FLOPs share, and the student's tokens over the oracle's (240 of 800)
    assert entry["student_tokens_pct"] == pytest.approx(30.0)
    assert "| 40.0 | 30.0 |" in table and "compute % (FLOPs) | student tokens % |" in table
    assert all(e["student_tokens_pct"] is None for e in saved["models"] if e["stage"] != "distill")  # students only
    assert saved["models"][0].keys() >= {"name", "stage", "role", "method", "alpha", "metrics"}

    log_report(
        results,
        paths["markdown"].read_text(),
        figures,
        name="test/report",
        wandb_dir=exp.wandb_dir,
        mode="offline",
    )
    runs = list(exp.wandb_dir.glob("wandb/offline-run-*"))
    assert len(runs) == 1 and any(runs[0].rglob("*.wandb"))
    from undo.reporting.dashboard import charts

    shown = charts(results)
    assert {"attack_curves/maxent", "robustness_vs_compute", "pareto"} <= shown.keys()
    robust = {row[2] for row in shown["robustness_vs_compute"].table.data}
    assert "distill/undo-maxent-a0.8-s0" in robust


def test_a_tree_without_an_oracle_reports_recovered_forget_performance_instead_of_robustness(exp):
    plant(exp, "pretrain/base", model_summary(4.0, 4.0, role="base"))
    plant(exp, "unlearn/maxent-lr1", model_summary(4.1, 7.5, role="unlearned", method="maxent", base="pretrain/base"))
    undo = "distill/undo-maxent-a0.5-s0"
    plant(
        exp,
        undo,
        model_summary(4.2, 7.4, role="undo", method="maxent", teacher="unlearn/maxent-lr1", alpha=0.5, beta=0.0),
    )
    for i, (ref, curve) in enumerate({"unlearn/maxent-lr1": [7.5, 4.5, 4.0], undo: [7.4, 6.0, 5.0]}.items()):
        plant(exp, f"relearn/r{i}", attack(ref, 1e-3, curve))
    results = collect(exp)
    assert results["oracle"] is False
    entry = next(e for e in results["models"] if e["name"] == undo)
    assert "robustness" not in entry
    assert entry["recovered"] == {"0": 0.0, "2": pytest.approx(6.0 - 7.4), "4": pytest.approx(5.0 - 7.4)}
    table = write(exp, results)["markdown"].read_text()
    assert "recovered @2" in table and "robust @" not in table
    assert {p.name for p in draw_all(results, exp.root / "results")} == {"relearning_per_method.png", "pareto.png"}
    from undo.reporting.dashboard import charts

    shown = charts(results)
    assert "robustness_vs_compute" not in shown
    curves = shown["attack_curves/maxent"].table
    assert undo in {row[curves.columns.index("lineKey")] for row in curves.data}  # UNDO's curve is drawn


def test_robustness_after_a_reset_is_scored_against_the_reset_attacks_of_reference_and_oracle(exp):
    """Attacks with reset_forget_rows form their own envelope and their own robustness, beside the plain one."""
    plant(exp, "pretrain/base", model_summary(4.0, 4.0, role="base"))
    plant(exp, "pretrain/oracle", model_summary(4.1, 9.0, role="oracle"))
    plant(exp, "unlearn/maxent-lr1", model_summary(4.1, 7.5, role="unlearned", method="maxent", base="pretrain/base"))
    plant(
        exp,
        "distill/reset-maxent",
        model_summary(4.3, 7.6, role="reset", method="maxent", teacher="unlearn/maxent-lr1"),
    )
    curves = {  # plain attack, attack after the reset
        "pretrain/oracle": ([9.0, 7.0, 6.0], [9.5, 8.0, 7.0]),
        "unlearn/maxent-lr1": ([7.5, 4.5, 4.0], [8.0, 6.0, 5.0]),
        "distill/reset-maxent": ([7.6, 6.0, 5.0], [8.0, 6.0, 5.0]),
    }
    for i, (ref, (plain, after_reset)) in enumerate(curves.items()):
        plant(exp, f"relearn/r{i}", attack(ref, 1e-3, plain))
        plant(exp, f"relearn/r{i}-reset", {**attack(ref, 1e-3, after_reset), "reset_forget_rows": True})
    results = collect(exp)
    reset = next(e for e in results["models"] if e["name"] == "distill/reset-maxent")
    assert reset["robustness"]["reference"] == "unlearn/maxent-lr1"
    assert reset["robustness"]["per_budget"]["2"] == pytest.approx((6.0 - 4.5) / (7.0 - 4.5))
    assert reset["robustness_after_reset"]["per_budget"]["2"] == pytest.approx(0.0)  # no better once all are reset
    assert reset["attack_after_reset"]["4"] == {"forget": 5.0, "lr": 1e-3}
    table = write(exp, results)["markdown"].read_text()
    assert "re-initialised" in table and "robust @2 (grid, reset)" in table


def test_each_model_is_scored_against_the_unlearned_model_it_comes_from():
    """A robust-unlearning variant against its plain method's selected teacher; a student against its own teacher;
    a plain unlearned run against itself; anything else against the MaxEnt teacher."""
    for method in ("maxent+sam", "maxent+repnoise", "rmu+sam+repnoise"):
        plain = method.split("+")[0]
        entry = {"name": f"unlearn/{method}-lr1", "role": "unlearned", "method": method}
        assert reference_unlearned(entry) == f"unlearn/selected:{plain}"
    assert reference_unlearned({"name": "unlearn/rmu-lr1", "role": "unlearned", "method": "rmu"}) == "unlearn/rmu-lr1"
    for role in ("distilled", "undo", "reset"):
        assert reference_unlearned({"role": role, "teacher": "unlearn/rmu-lr1"}) == "unlearn/rmu-lr1"
    assert reference_unlearned({"role": "matched", "teacher": "pretrain/oracle"}) == "unlearn/selected:maxent"
