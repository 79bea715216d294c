"""A stronger attacker: the relearning attack's knobs searched per model with Optuna.

The fixed grid tries the same learning rates on every model. Here a TPE sampler (seeded, so a search repeats
exactly) proposes `trials` attacks, each a whole attack from the same model: a learning rate log-uniformly in
[low, high] and, where the search lists choices, the number of steps, the optimiser, the schedule, the batch size,
the share of retain data mixed in and the LoRA rank (the knobs tampering benchmarks search). It steers towards the
attack that brings the forget metric back furthest by its last step. With `retain_epsilon`, a trial counts only
if it keeps the retain metric within that degradation of its value before the attack (Optuna's constrained TPE
steers away from the others): an attack that wrecks the model is not a recovery. Every trial is kept, with the
best feasible value so far after each, to see whether the search has converged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import Field, Strict, model_validator

from undo.evaluate.metrics import Metric
from undo.params import Count, LearningRate, Schema, Seed

KNOBS = ("steps", "optimizer", "schedule", "batch_size", "retain_share", "lora_rank")  # Search's choice lists


class Search(Schema):
    """The Optuna attacker: `trials` attacks, learning rates proposed log-uniformly in [low, high] and each knob
    drawn from its choices (none listed: the job's own value)."""

    trials: Count
    low: LearningRate
    high: LearningRate
    seed: Seed = 0
    steps: tuple[Count, ...] = ()
    optimizer: tuple[Literal["adamw", "sgd", "adagrad"], ...] = ()
    schedule: tuple[Literal["constant", "cosine"], ...] = ()  # cosine: 10% warmup, decay to lr / 10
    batch_size: tuple[Count, ...] = ()
    retain_share: tuple[Annotated[float, Strict(), Field(ge=0, lt=1)], ...] = ()  # of retain data in each batch
    lora_rank: tuple[Count, ...] = ()  # a LoRA attack's rank
    retain_epsilon: Annotated[float, Strict(), Field(ge=0)] | None = None  # the most retain degradation kept

    @model_validator(mode="after")
    def _range(self):
        if self.low >= self.high:
            raise ValueError(f"low {self.low:g} must be below high {self.high:g}")
        return self


def chosen(params, choice: dict, forget_mix: dict[str, float], retain_mix: dict[str, float]):
    """The attack's params (undo.stages.relearn.Params) with a trial's choice in place of its own values."""
    optim = {"lr": choice["lr"], "steps": choice.get("steps", params.optim.steps)}
    if "optimizer" in choice:
        optim["optimizer"] = choice["optimizer"]
    if "schedule" in choice:
        cosine = choice["schedule"] == "cosine"
        optim.update(warmup=optim["steps"] // 10 if cosine else 0, min_lr=choice["lr"] / 10 if cosine else None)
    update = {"optim": params.optim.model_copy(update=optim)}
    if "batch_size" in choice:
        update["batch_size"] = choice["batch_size"]
    share = choice.get("retain_share", 0)
    if share:
        weights = {d: w * (1 - share) for d, w in forget_mix.items()} | {d: w * share for d, w in retain_mix.items()}
        update["mix"] = weights
    if "lora_rank" in choice:
        update["lora"] = params.lora.model_copy(update={"rank": choice["lora_rank"]})
    return params.model_copy(update=update)


def search(
    attack: Callable[[dict], tuple[list[dict], float]],
    forget: Metric,
    space: Search,
    feasible: Callable[[float], bool] = lambda _retain: True,
) -> list[dict]:
    """[{"choice", "curve", "retain", "feasible"}] of each trial, in order. `attack(choice)` runs one attack of
    the choice ({"lr", and a value of every knob `space` lists choices for}) and returns (its curve, its retain
    value)."""
    import optuna  # heavy: only a searched attack needs it

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=space.seed)
    direction = "maximize" if forget.higher_is_better else "minimize"
    study = optuna.create_study(direction=direction, sampler=sampler)
    done: list[dict] = []

    def objective(trial) -> float:
        choice = {"lr": trial.suggest_float("lr", space.low, space.high, log=True)}
        for knob in KNOBS:
            if getattr(space, knob):
                choice[knob] = trial.suggest_categorical(knob, list(getattr(space, knob)))
        curve, retain = attack(choice)
        ok = feasible(retain)
        if space.retain_epsilon is not None:  # TPE models the infeasible trials apart
            trial.set_constraint("retain", 0.0 if ok else 1.0)
        done.append({"choice": choice, "curve": curve, "retain": retain, "feasible": ok})
        return curve[-1][forget.name]

    study.optimize(objective, n_trials=space.trials)
    return done


def strength(forget: Metric, trial: dict) -> float:
    """How far the trial brought the forget metric back at its last step (higher = a stronger attack)."""
    value = trial["curve"][-1][forget.name]
    return value if forget.higher_is_better else -value


def best(trials: list[dict], forget: Metric) -> dict | None:
    """The strongest feasible trial (None when no trial kept the retain metric)."""
    kept = [t for t in trials if t["feasible"]]
    return max(kept, key=lambda t: strength(forget, t)) if kept else None


def best_so_far(trials: list[dict], forget: Metric) -> list[float | None]:
    """The forget metric of the strongest feasible trial among the first 1, 2, ... trials."""
    values = []
    for n in range(len(trials)):
        top = best(trials[: n + 1], forget)
        values.append(None if top is None else top["curve"][-1][forget.name])
    return values
