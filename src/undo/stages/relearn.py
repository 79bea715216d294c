"""Relearning attack: finetune a model with plain next-token CE on forget data at a constant learning rate and
record how fast the forget metric comes back."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from undo.forget_vocab import forget_vocabulary, reset_rows
from undo.objectives import LanguageModeling
from undo.params import Bool, Count, Float, LearningRate, Mix, Optim, RunRef, StageParams
from undo.selection import resolve
from undo.stages.common import evaluator, fit, mixture, save, summarize


class Params(StageParams):
    model: RunRef  # the attacked model
    lr: LearningRate  # constant
    steps: Count
    grad_accum: Count = 1
    weight_decay: Annotated[Float, Field(ge=0)] = 0.0
    betas: tuple[Float, Float] | None = None  # AdamW's; default: undo.params.Optim's
    mix: Mix | None = None  # default: the forget domain only; the mixed-data attack adds the retain domain
    save_model: Bool = False
    # first re-initialise the model's forget-vocabulary embedding rows (the report's robustness_after_reset)
    reset_forget_rows: Bool = False

    def inputs(self) -> dict[str, str]:
        return {"model": self.model}

    def optim(self) -> Optim:
        betas = {"betas": self.betas} if self.betas else {}
        return Optim(lr=self.lr, steps=self.steps, weight_decay=self.weight_decay, grad_accum=self.grad_accum, **betas)


def run(exp, rundir, tracker, params: Params) -> dict:
    setting = exp.setting
    target = resolve(exp, params.model)
    model = exp.load_model(target)
    if params.reset_forget_rows:
        reset_rows(model, forget_vocabulary(exp), params.seed)
    rundir.record_inputs(exp, model=target)
    data = mixture(exp, params.mix or setting.forget_mix, params.batch_size, params.seed)
    # The attack's curve needs the forget metric only, often; the retain metric is measured once at the end.
    result = fit(
        exp,
        rundir,
        tracker,
        model,
        LanguageModeling(params.chunk_rows),
        {"train": data},
        params,
        optim=params.optim(),
        evaluate=evaluator(exp, [setting.forget.name]),
    )
    retain = evaluator(exp, [setting.retain.name])(model)
    if params.save_model:
        save(exp, rundir, model)
    curve = [{k: v for k, v in e.items() if k not in ("kind", "tokens", "flops")} for e in result.evals]
    summary = summarize(
        result,
        model,
        role="attack",
        target=target,
        target_ref=params.model,
        lr=params.lr,
        reset_forget_rows=params.reset_forget_rows,
        curve=curve,
        epochs=data.epochs(),
    )
    summary["metrics"].update(retain)
    return summary
