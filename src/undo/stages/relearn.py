"""Relearning attack: finetune a model with plain next-token CE on forget data at a constant learning rate and
record how fast the forget metric comes back; or search that learning rate with Optuna
(undo.stages.attack_search), each trial an attack of the same shape."""

from __future__ import annotations

from pydantic import model_validator

from undo.experiment import Experiment
from undo.params import Bool, Count, LearningRate, Mix, Optim, RunRef, Schema, Seed, StageParams
from undo.runs.names import ATTACK
from undo.runs.rundir import RunDir
from undo.runs.selection import resolve
from undo.runs.tracking import Tracker
from undo.stages import attack_search
from undo.stages.common import evaluator, fit, measured, mixture, save, summarize
from undo.stages.forget_vocab import forget_vocabulary, reset_rows
from undo.training.loop import TrainResult
from undo.training.objectives import LanguageModeling


class Search(Schema):
    """The Optuna attacker: `trials` attacks at learning rates proposed log-uniformly in [low, high]."""

    trials: Count
    low: LearningRate
    high: LearningRate
    seed: Seed = 0

    @model_validator(mode="after")
    def _range(self):
        if self.low >= self.high:
            raise ValueError(f"low {self.low:g} must be below high {self.high:g}")
        return self


class Params(StageParams):
    model: RunRef  # the attacked model
    optim: Optim  # constant lr; with `search`, each trial replaces the lr with its own
    search: Search | None = None
    mix: Mix | None = None  # default: the forget domain only; the mixed-data attack adds the retain domain
    save_model: Bool = False
    # first re-initialise the model's forget-vocabulary embedding rows (the report's robustness_after_reset)
    reset_forget_rows: Bool = False

    @model_validator(mode="after")
    def _one_model(self):
        if self.search is not None and self.save_model:
            raise ValueError("a searched attack trains one model per trial: drop save_model")
        return self

    def inputs(self) -> dict[str, str]:
        return {"model": self.model}


def run(exp: Experiment, rundir: RunDir, tracker: Tracker, params: Params) -> dict:
    target = resolve(exp, params.model)
    rundir.record_inputs(exp, model=target)
    attack = Attack(exp, rundir, tracker, params, target)
    identity = dict(role=ATTACK, target=target, target_ref=params.model, reset_forget_rows=params.reset_forget_rows)
    if params.search is not None:
        return _searched(exp, tracker, params.search, attack, identity)
    result, model, data = attack(params.optim)
    retain = evaluator(exp, [exp.setting.retain.name])(model)  # measured once, at the end
    if params.save_model:
        save(exp, rundir, model)
    summary = summarize(
        result, model, **identity, attacker="grid", lr=params.optim.lr, curve=_curve(result), epochs=data.epochs()
    )
    summary["metrics"].update(retain)
    return summary


class Attack:
    """One attack of the job's shape on a fresh copy of the target: the same model and batches every time."""

    def __init__(self, exp: Experiment, rundir: RunDir, tracker: Tracker, params: Params, target: str):
        self.exp, self.rundir, self.tracker, self.params, self.target = exp, rundir, tracker, params, target
        self.forget_rows = forget_vocabulary(exp) if params.reset_forget_rows else None
        forget = [exp.setting.forget.name]
        # The curve needs the forget metric only, often; the retain metric is measured once at the end.
        self.forget_only = evaluator(exp, forget)
        self.start = None if params.reset_forget_rows else measured(exp, target, forget)

    def __call__(self, optim: Optim, trial: int | None = None):
        """(result, attacked model, data stream); a search's trial neither logs its steps nor checkpoints."""
        exp, params = self.exp, self.params
        model = exp.load_model(self.target)
        if self.forget_rows is not None:
            reset_rows(model, self.forget_rows, params.seed)
        data = mixture(exp, params.mix or exp.setting.forget_mix, params.batch_size, params.seed)
        result = fit(
            exp,
            self.rundir,
            self.tracker,
            model,
            LanguageModeling(params.chunk_rows),
            {"train": data},
            params,
            optim=optim,
            evaluate=self.forget_only,
            start_metrics=self.start,
            trial=trial,
        )
        return result, model, data


def _searched(exp: Experiment, tracker: Tracker, search: Search, attack: Attack, identity: dict) -> dict:
    """One attack per Optuna trial; the summary keeps every trial, and the best one's curve."""
    results, last = [], {}
    forget = exp.setting.forget.name

    def trial(lr: float) -> list[dict]:
        result, last["model"], _ = attack(attack.params.optim.model_copy(update={"lr": lr}), trial=len(results) + 1)
        results.append(result)
        curve = _curve(result)
        tracker.log({"kind": "trial", "trial": len(results), "lr": lr, forget: curve[-1][forget]}, len(results))
        return curve

    trials = attack_search.search(trial, exp.setting.forget, search.trials, search.low, search.high, search.seed)
    best = max(trials, key=lambda t: _attacker_score(exp, t))
    total = TrainResult(**{k: sum(getattr(r, k) for r in results) for k in ("steps", "tokens", "flops", "seconds")})
    summary = summarize(
        total, last["model"], {forget: best["curve"][-1][forget]}, **identity, attacker="optuna", lr=best["lr"],
        curve=best["curve"],
    )  # fmt: skip
    summary["trials"] = trials
    return summary


def _attacker_score(exp: Experiment, trial: dict) -> float:
    """How far the trial brought the forget metric back at its last step (higher = a stronger attack)."""
    value = trial["curve"][-1][exp.setting.forget.name]
    return value if exp.setting.forget.higher_is_better else -value


def _curve(result: TrainResult) -> list[dict]:
    return [{k: v for k, v in e.items() if k not in ("kind", "tokens", "flops")} for e in result.evals]
