"""Robustness over replicates: mean ± sample std per model, budget and attacker, by hand on synthetic records."""

from __future__ import annotations

import json
import statistics

import pytest

from undo.reporting.replicates import combine, markdown, write


def replicate(full: tuple[float, float], undo: float | None, optuna: float | None = None) -> dict:
    models = [
        {"name": "distill/full-maxent", "robustness": {"per_budget": {"10": full[0], "30": full[1]}}},
        {"name": "pretrain/base"},  # not attacked: left out
    ]
    if undo is not None:
        models.append({"name": "distill/undo-a0.8", "robustness": {"per_budget": {"10": undo, "30": None}}})
    if optuna is not None:
        models[0]["robustness_optuna"] = {"per_budget": {"10": optuna}}
    return {"budgets": [0, 10, 30], "models": models}


def test_replicates_combine_to_mean_and_sample_std_per_model_budget_and_attacker(tmp_path):
    replicates = [replicate((0.9, 0.7), 0.8, 0.5), replicate((1.0, 0.8), 0.6, 0.7), replicate((0.8, 0.6), None)]
    combined = combine(replicates)
    full = combined["models"]["distill/full-maxent"]["robustness"]
    assert full["10"]["mean"] == pytest.approx(0.9) and full["10"]["std"] == pytest.approx(0.1)
    assert full["30"] == {"mean": pytest.approx(0.7), "std": pytest.approx(0.1), "n": 3, "values": [0.7, 0.8, 0.6]}
    undo = combined["models"]["distill/undo-a0.8"]["robustness"]
    assert undo["10"]["n"] == 2 and undo["10"]["std"] == pytest.approx(statistics.stdev([0.8, 0.6]))
    assert "30" not in undo  # a missing value is not a zero
    optuna = combined["models"]["distill/full-maxent"]["robustness_optuna"]["10"]
    assert optuna["mean"] == pytest.approx(0.6) and optuna["n"] == 2
    assert "pretrain/base" not in combined["models"]
    table = markdown(combined)
    assert "| distill/full-maxent | 0.90 ± 0.10 (n=3) | 0.70 ± 0.10 (n=3) |" in table
    assert "## Attacker: optuna" in table and "| distill/undo-a0.8 | 0.70 ± 0.14 (n=2) | – |" in table
    paths = write(replicates, tmp_path)
    assert json.loads(paths["json"].read_text())["replicates"] == 3
    assert paths["figure"].stat().st_size > 5000


def test_a_single_replicate_has_no_spread():
    combined = combine([replicate((0.9, 0.7), None)])
    point = combined["models"]["distill/full-maxent"]["robustness"]["10"]
    assert point["std"] is None and "0.90 (n=1)" in markdown(combined)


def test_the_forget_metric_each_attacker_reached_and_the_retain_metric_are_combined_too():
    """Where a ratio is left out (after a reset the oracle and the unlearned model relearn alike), the forget
    metric each attacker reached still shows how far every model relearned."""

    def replicate(reset_ko: float, en: float) -> dict:
        model = {
            "name": "distill/full-maxent",
            "metrics": {"retain": en, "forget": 7.9},
            "attack": {"0": {"forget": 7.9, "lr": 1e-3}, "10": {"forget": 6.2, "lr": 3e-3}},
            "attack_after_reset": {"0": {"forget": 7.6, "lr": 1e-3}, "10": {"forget": reset_ko, "lr": 3e-3}},
            "robustness_after_reset": {"per_budget": {"10": None}},
        }
        return {"budgets": [0, 10], "models": [model]}

    combined = combine([replicate(6.1, 5.0), replicate(6.3, 5.2)])
    scores = combined["models"]["distill/full-maxent"]
    assert scores["attack_after_reset"]["10"]["mean"] == pytest.approx(6.2)
    assert scores["attack_after_reset"]["10"]["std"] == pytest.approx(statistics.stdev([6.1, 6.3]))
    assert scores["attack"]["0"]["values"] == [7.9, 7.9] and "robustness_after_reset" not in scores
    assert scores["retain"]["0"]["mean"] == pytest.approx(5.1)
    table = markdown(combined)
    assert "## Forget metric after the attack, attacker: grid, reset" in table
    assert "| distill/full-maxent | 7.600 ± 0.000 (n=2) | 6.200 ± 0.141 (n=2) |" in table
    assert "## Retain metric before any attack" in table and "| distill/full-maxent | 5.100 ± 0.141 (n=2) |" in table


def test_the_attack_suite_combines_per_family_with_each_replicates_own_selected_teacher():
    def replicate(teacher_run: str, student: float, worst: float | None) -> dict:
        families = {
            teacher_run: {"finetune": {"forget": 4.5, "robustness": 0.0}, "worst": {"robustness": 0.0}},
            "distill/full-maxent": {
                "finetune": {"forget": 5.7, "robustness": student},
                "quantize-int4-rtn": {"forget": 7.8},  # not scored: it moved nothing
                "worst": {"robustness": worst, "family": "finetune"},
            },
        }
        return {"budgets": [0, 30], "models": [], "selected": {"maxent": teacher_run}, "families": {"models": families}}

    combined = combine([replicate("unlearn/maxent-lr0.001", 0.8, 0.7), replicate("unlearn/maxent-lr0.0003", 0.6, 0.5)])
    view = combined["families"]
    assert set(view) == {"unlearn/selected:maxent", "distill/full-maxent"}
    assert view["unlearn/selected:maxent"]["finetune"]["forget"]["n"] == 2
    student = view["distill/full-maxent"]
    assert student["finetune"]["robustness"]["mean"] == pytest.approx(0.7)
    assert student["worst"]["robustness"]["std"] == pytest.approx(statistics.stdev([0.7, 0.5]))
    assert "robustness" not in student["quantize-int4-rtn"]
    table = markdown(combined)
    assert "| model | finetune | worst |" in table  # no model scored under quantization: no column
    assert "| distill/full-maxent | 0.70 ± 0.14 (n=2) | 0.60 ± 0.14 (n=2) |" in table
    assert "| distill/full-maxent | 5.700 ± 0.000 (n=2) | 7.800 ± 0.000 (n=2) |" in table
    assert combine([replicate("unlearn/x", 0.8, 0.7) | {"families": None}])["families"] is None
