"""The Optuna attacker: a seeded search repeats exactly, searches every listed knob, keeps only trials that keep
the retain metric, the stage keeps every trial, the report scores it apart."""

from __future__ import annotations

import json
import math

import pytest
from planting import plant_run, plant_scored_models

from undo.evaluate.metrics import Metric
from undo.params import InvalidParams
from undo.reporting.report import collect
from undo.runner.jobs import Job
from undo.runner.launch import launch
from undo.stages.attack_search import Search, best, best_so_far, search
from undo.stages.relearn import Params

KO_CE = Metric("ko_ce", higher_is_better=False)
ACCURACY = Metric("acc", higher_is_better=True)


def bowl(choice: dict) -> tuple[list[dict], None]:
    """A stand-in attack whose final forget CE is lowest (the attack strongest) at lr = 1e-3."""
    return [{"step": 0, "ko_ce": 8.0}, {"step": 4, "ko_ce": 4.0 + (math.log10(choice["lr"]) + 3) ** 2}], None


def test_a_seeded_search_repeats_exactly_and_finds_the_strongest_learning_rate():
    space = Search(trials=20, low=1e-6, high=1e-1, seed=3)
    first, again = search(bowl, KO_CE, space), search(bowl, KO_CE, space)
    other = search(bowl, KO_CE, space.model_copy(update={"seed": 4}))
    lrs = lambda trials: [t["choice"]["lr"] for t in trials]  # noqa: E731
    assert lrs(first) == lrs(again) != lrs(other)
    assert all(1e-6 <= lr <= 1e-1 for lr in lrs(first))
    assert abs(math.log10(best(first, KO_CE)["choice"]["lr"]) + 3) < 0.5  # within half a decade after 20 trials


def test_every_listed_knob_is_searched_and_unlisted_ones_keep_the_jobs_value():
    space = Search(trials=12, low=1e-4, high=1e-2, steps=(10, 100), optimizer=("adamw", "sgd"), lora_rank=(4, 16))
    trials = search(bowl, KO_CE, space)
    assert all(t["choice"].keys() == {"lr", "steps", "optimizer", "lora_rank"} for t in trials)
    for knob, choices in (("steps", {10, 100}), ("optimizer", {"adamw", "sgd"}), ("lora_rank", {4, 16})):
        assert {t["choice"][knob] for t in trials} == choices  # each choice tried in 12 trials


def test_the_best_trial_is_the_strongest_that_kept_the_retain_metric():
    def trial(acc: float, retain: float, feasible: bool) -> dict:
        return {"choice": {"lr": acc}, "curve": [{"step": 0, "acc": 0.1}, {"step": 9, "acc": acc}], "retain": retain,
                "feasible": feasible}  # fmt: skip

    trials = [trial(0.3, 0.9, True), trial(0.8, 0.2, False), trial(0.5, 0.85, True), trial(0.4, 0.9, True)]
    assert best(trials, ACCURACY) is trials[2]  # 0.8 recovers most but wrecked the retain metric
    assert best_so_far(trials, ACCURACY) == [0.3, 0.3, 0.5, 0.5]
    assert best(trials[1:2], ACCURACY) is None and best_so_far(trials[1:2], ACCURACY) == [None]
    ce = [{**t, "curve": [{"step": 9, "ko_ce": c}]} for t, c in zip(trials, (5.0, 1.0, 4.0, 4.5), strict=True)]
    assert best(ce, KO_CE) is ce[2]  # the lowest CE among the feasible ones


def test_a_constrained_search_marks_the_trials_that_broke_the_retain_metric():
    def attack(choice):  # strong attacks (high lr) recover more and wreck the retain metric
        return [{"step": 0, "acc": 0.0}, {"step": 5, "acc": choice["lr"] * 10}], 1.0 - choice["lr"] * 10

    trials = search(attack, ACCURACY, Search(trials=15, low=1e-3, high=9e-2, retain_epsilon=0.3), lambda r: r >= 0.7)
    assert [t["feasible"] for t in trials] == [t["retain"] >= 0.7 for t in trials]
    assert any(t["feasible"] for t in trials) and not all(t["feasible"] for t in trials)
    strongest_kept = max(t["choice"]["lr"] for t in trials if t["feasible"])
    assert best(trials, ACCURACY)["choice"]["lr"] == strongest_kept <= 0.03


def test_an_attack_takes_an_optimiser_and_maybe_a_search():
    base = {"model": "pretrain/base", "optim": {"lr": 1e-3, "steps": 2}, "batch_size": 2}
    Params.parse(base)
    Params.parse({**base, "search": {"trials": 3, "low": 1e-5, "high": 1e-2}})
    for bad, problem in (
        ({**base, "optim": {"steps": 2}}, "optim.lr: Field required"),
        ({**base, "search": {"trials": 3, "low": 1e-5, "high": 1e-2}, "save_model": True}, "drop save_model"),
        ({**base, "search": {"trials": 3, "low": 1e-2, "high": 1e-5}}, "must be below"),
    ):
        with pytest.raises(InvalidParams, match=problem):
            Params.parse(bad)


def test_a_searched_attack_keeps_every_trial_and_repeats_with_its_seed(exp):
    pretrain = {"mix": {"en": 0.5, "ko": 0.5}, "batch_size": 2, "eval_every": 2, "optim": {"lr": 1e-3, "steps": 2}}
    assert launch(exp, [Job("pretrain", "base", pretrain)], wandb="off") == 0
    attack = {"model": "pretrain/base", "optim": {"lr": 1e-3, "steps": 2}, "batch_size": 2, "eval_every": 1}
    attack["search"] = {"trials": 3, "low": 1e-5, "high": 1e-2, "seed": 7}
    jobs = [Job("relearn", name, attack) for name in ("a", "b")]
    assert launch(exp, jobs, wandb="off") == 0
    a, b = (json.loads((exp.run_dir(f"relearn/{n}") / "summary.json").read_text()) for n in ("a", "b"))
    assert a["attacker"] == "optuna" and len(a["trials"]) == 3
    assert [t["lr"] for t in a["trials"]] == [t["lr"] for t in b["trials"]]
    assert [t["curve"] for t in a["trials"]] == [t["curve"] for t in b["trials"]]  # the attacks, not only the rates
    assert [len(t["curve"]) for t in a["trials"]] == [3, 3, 3]  # steps 0, 1, 2
    assert a["lr"] in [t["lr"] for t in a["trials"]] and a["steps"] == 6
    assert a["curve"][-1]["ko_ce"] == min(t["curve"][-1]["ko_ce"] for t in a["trials"])


def test_the_report_scores_the_optuna_attacker_apart_from_the_grid(exp):
    plant_scored_models(exp)
    grid = {"oracle": [9.0, 7.0], "unlearn/maxent-lr1": [8.0, 5.0], "distill/full-maxent": [8.5, 6.0]}
    searched = {
        "oracle": ([9.0, 6.5], [9.0, 6.0]),
        "unlearn/maxent-lr1": ([8.0, 4.5], [8.0, 4.0]),
        "distill/full-maxent": ([8.5, 5.8], [8.5, 5.5]),
    }
    for i, target in enumerate(("pretrain/oracle", "unlearn/maxent-lr1", "distill/full-maxent")):
        key = target.removeprefix("pretrain/")
        curve = lambda values: [{"step": 2 * j, "ko_ce": v} for j, v in enumerate(values)]  # noqa: E731
        common = {"metrics": {"ko_ce": 0.0}, "steps": 2, "flops": 1.0, "role": "attack", "target": target}
        plant_run(exp, f"relearn/g{i}", {**common, "lr": 1e-3, "curve": curve(grid[key])})
        trials = [{"lr": lr, "curve": curve(values)} for lr, values in zip((1e-4, 1e-2), searched[key], strict=True)]
        plant_run(exp, f"relearn/o{i}", {**common, "attacker": "optuna", "lr": 1e-2, "curve": [], "trials": trials})
    models = {e["name"]: e for e in collect(exp)["models"]}
    unlearned, student = models["unlearn/maxent-lr1"], models["distill/full-maxent"]
    assert unlearned["attack"]["2"] == {"forget": 5.0, "lr": 1e-3}
    assert unlearned["attack_optuna"]["2"] == {"forget": 4.0, "lr": 1e-2}  # the best trial, not the grid's
    # each attacker's robustness against the oracle and the teacher under the same attacker
    assert student["robustness"]["per_budget"]["2"] == pytest.approx((6.0 - 5.0) / (7.0 - 5.0))
    assert student["robustness_optuna"]["per_budget"]["2"] == pytest.approx((5.5 - 4.0) / (6.0 - 4.0))
