"""Relearning attack: finetune a model with plain next-token CE on forget data at a constant learning rate and
record how fast the forget metric comes back; or search that learning rate with Optuna (undo.attack_search)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from undo.attack_search import search
from undo.forget_vocab import forget_vocabulary, reset_rows
from undo.objectives import LanguageModeling
from undo.params import Bool, Count, Float, LearningRate, Mix, Optim, RunRef, Schema, Seed, StageParams
from undo.selection import resolve
from undo.stages.common import evaluator, fit, measured, mixture, save, summarize
from undo.train import TrainResult, train


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
    lr: LearningRate | None = None  # constant; or `search` for it
    search: Search | None = None
    steps: Count
    grad_accum: Count = 1
    weight_decay: Annotated[Float, Field(ge=0)] = 0.0
    betas: tuple[Float, Float] | None = None  # AdamW's; default: undo.params.Optim's
    mix: Mix | None = None  # default: the forget domain only; the mixed-data attack adds the retain domain
    save_model: Bool = False
    # first re-initialise the model's forget-vocabulary embedding rows (the report's robustness_after_reset)
    reset_forget_rows: Bool = False

    @model_validator(mode="after")
    def _lr_or_search(self):
        if (self.lr is None) == (self.search is None):
            raise ValueError("give the attack either lr or search, not both")
        if self.search is not None and self.save_model:
            raise ValueError("a searched attack trains one model per trial: drop save_model")
        return self

    def inputs(self) -> dict[str, str]:
        return {"model": self.model}

    def optim(self, lr: float | None = None) -> Optim:
        betas = {"betas": self.betas} if self.betas else {}
        return Optim(
            lr=lr or self.lr, steps=self.steps, weight_decay=self.weight_decay, grad_accum=self.grad_accum, **betas
        )


def run(exp, rundir, tracker, params: Params) -> dict:
    setting = exp.setting
    target = resolve(exp, params.model)
    rundir.record_inputs(exp, model=target)

    forget_rows = forget_vocabulary(exp) if params.reset_forget_rows else None

    def attacked():
        model = exp.load_model(target)
        if forget_rows is not None:
            reset_rows(model, forget_rows, params.seed)
        return model, mixture(exp, params.mix or setting.forget_mix, params.batch_size, params.seed)

    # The attack's curve needs the forget metric only, often; the retain metric is measured once at the end.
    forget_only = evaluator(exp, [setting.forget.name])
    start = None if params.reset_forget_rows else measured(exp, target, [setting.forget.name])
    identity = dict(role="attack", target=target, target_ref=params.model, reset_forget_rows=params.reset_forget_rows)
    if params.search is not None:
        return _searched(exp, rundir, tracker, params, attacked, forget_only, identity, start)
    model, data = attacked()
    objective = LanguageModeling(params.chunk_rows)
    result = fit(
        exp,
        rundir,
        tracker,
        model,
        objective,
        {"train": data},
        params,
        optim=params.optim(),
        evaluate=forget_only,
        start_metrics=start,
    )
    retain = evaluator(exp, [setting.retain.name])(model)
    if params.save_model:
        save(exp, rundir, model)
    summary = summarize(
        result, model, **identity, attacker="grid", lr=params.lr, curve=_curve(result), epochs=data.epochs()
    )
    summary["metrics"].update(retain)
    return summary


def _searched(exp, rundir, tracker, params: Params, attacked, forget_only, identity: dict, start) -> dict:
    """One attack per Optuna trial, each from the same model and batches; the summary keeps every trial."""
    results, last = [], {}

    def attack(lr: float) -> list[dict]:
        model, data = attacked()
        last["model"] = model
        result = train(
            model,
            LanguageModeling(params.chunk_rows),
            {"train": data},
            params.optim(lr),
            accelerator=exp.accelerator,
            evaluate=forget_only,
            eval_every=params.eval_every,
            eval_at=params.eval_at,
            desc=f"{rundir.final.parent.name}/{rundir.final.name} trial {len(results) + 1}",
            start_metrics=start,
        )
        results.append(result)
        curve = _curve(result)
        forget = exp.setting.forget.name
        tracker.log({"kind": "trial", "trial": len(results), "lr": lr, forget: curve[-1][forget]}, len(results))
        return curve

    s = params.search
    trials = search(attack, exp.setting.forget, s.trials, s.low, s.high, s.seed)
    best = max(trials, key=lambda trial: _attacker_score(exp, trial))
    total = TrainResult(**{k: sum(getattr(r, k) for r in results) for k in ("steps", "tokens", "flops", "seconds")})
    forget = exp.setting.forget.name
    metrics = {forget: best["curve"][-1][forget]}
    summary = summarize(
        total, last["model"], metrics, **identity, attacker="optuna", lr=best["lr"], curve=best["curve"]
    )
    summary["trials"] = trials
    return summary


def _attacker_score(exp, trial: dict) -> float:
    """How far the trial brought the forget metric back at its last step (higher = a stronger attack)."""
    value = trial["curve"][-1][exp.setting.forget.name]
    return value if exp.setting.forget.higher_is_better else -value


def _curve(result) -> list[dict]:
    return [{k: v for k, v in e.items() if k not in ("kind", "tokens", "flops")} for e in result.evals]
