"""Unlearning: start from the base model and apply one method (optionally with SAM or RepNoise) using a
forget batch and a retain batch per step."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from undo.experiment import Experiment
from undo.params import InvalidParams, Optim, RunRef, StageParams
from undo.runs.names import BASE, UNLEARNED
from undo.runs.rundir import RunDir
from undo.runs.selection import resolve
from undo.runs.tracking import Tracker
from undo.stages.common import fit, measured, mixture, save, summarize
from undo.unlearning import METHODS, make_objective, variant
from undo.unlearning.repnoise import WithRepNoise


class Params(StageParams):
    method: str
    args: dict[str, Any] = Field(default_factory=dict)  # the method's options, checked against its `Args`
    base: RunRef = BASE
    optim: Optim
    repnoise: WithRepNoise.Args | None = None

    @field_validator("method")
    @classmethod
    def _known_method(cls, method):
        if method not in METHODS:
            raise ValueError(f"unknown unlearning method {method!r}: choose one of {sorted(METHODS)}")
        return method

    @model_validator(mode="after")
    def _method_options(self):
        try:
            METHODS[self.method].Args.parse(self.args)
        except InvalidParams as err:
            raise ValueError("; ".join(f"args.{line}" for line in err.problems)) from None
        return self

    def inputs(self) -> dict[str, str]:
        return {"base": self.base}


def run(exp: Experiment, rundir: RunDir, tracker: Tracker, params: Params) -> dict:
    base = resolve(exp, params.base)
    model = exp.load_model(base)
    rundir.record_inputs(exp, base=base)
    repnoise = params.repnoise.model_dump() if params.repnoise else None
    objective = make_objective(params.method, model, params.args, params.seed, repnoise, params.chunk_rows)
    setting = exp.setting
    streams = {
        "forget": mixture(exp, setting.forget_mix, params.batch_size, params.seed),
        "retain": mixture(exp, setting.retain_mix, params.batch_size, params.seed + 1),
    }
    result = fit(exp, rundir, tracker, model, objective, streams, params, start_metrics=measured(exp, base))
    save(exp, rundir, model)
    return summarize(result, model, role=UNLEARNED, method=variant(params.model_dump()), base=base, lr=params.optim.lr)
