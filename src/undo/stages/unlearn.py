"""Unlearning: start from the base model and apply one method (optionally with SAM or RepNoise) using a
forget batch and a retain batch per step."""

from __future__ import annotations

import inspect
from typing import Any

from pydantic import Field, field_validator, model_validator

from undo.experiment import BASE
from undo.params import Float, Int, Optim, RunRef, Schema, StageParams
from undo.selection import resolve
from undo.stages.common import fit, measured, mixture, save, summarize
from undo.unlearning import METHODS, make_objective, variant


class RepNoise(Schema):
    alpha: Float  # weight of the noise-matching (MMD) term
    beta: Float  # weight of the gradient-ascent term on forget data
    max_rows: Int = 256


class Params(StageParams):
    method: str
    args: dict[str, Any] = Field(default_factory=dict)  # the method's options (e.g. retain_weight, RMU's layer)
    base: RunRef = BASE
    optim: Optim
    repnoise: RepNoise | None = None

    @field_validator("method")
    @classmethod
    def _known_method(cls, method):
        if method not in METHODS:
            raise ValueError(f"unknown unlearning method {method!r}: choose one of {sorted(METHODS)}")
        return method

    @model_validator(mode="after")
    def _method_options(self):
        accepted = set(inspect.signature(METHODS[self.method]).parameters) - {"model", "seed"}
        unknown = sorted(set(self.args) - accepted)
        if unknown:
            raise ValueError(f"{self.method} has no option(s) {unknown}: it takes {sorted(accepted)}")
        return self

    def inputs(self) -> dict[str, str]:
        return {"base": self.base}


def run(exp, rundir, tracker, params: Params) -> dict:
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
    return summarize(
        result, model, role="unlearned", method=variant(params.model_dump()), base=base, lr=params.optim.lr
    )
