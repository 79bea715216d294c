"""A stronger attacker: the relearning attack's learning rate searched per model with Optuna.

The fixed grid tries the same learning rates on every model; here a TPE sampler (seeded, so a search repeats
exactly) proposes `trials` learning rates log-uniformly in [low, high], each a whole attack of the job's steps
from the same model and the same batches, steering towards the learning rate that brings the forget metric back
furthest by the attack's last step (the approach of TamperBench). Every trial's curve is kept: the report takes
the best trial at each budget, as it takes the best learning rate of the grid.
"""

from __future__ import annotations

from collections.abc import Callable

from undo.evaluate.metrics import Metric


def search(
    attack: Callable[[float], list[dict]], metric: Metric, trials: int, low: float, high: float, seed: int
) -> list[dict]:
    """[{"lr", "curve"}] of each trial, in order; `attack(lr)` runs one attack and returns its curve."""
    import optuna  # heavy: only a searched attack needs it

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    direction = "maximize" if metric.higher_is_better else "minimize"
    study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=seed))
    done: list[dict] = []

    def objective(trial) -> float:
        lr = trial.suggest_float("lr", low, high, log=True)
        curve = attack(lr)
        done.append({"lr": lr, "curve": curve})
        return curve[-1][metric.name]

    study.optimize(objective, n_trials=trials)
    return done
