"""Pretraining from random initialisation: the base model (retain + forget data) and the data-filtered oracle
(retain data only), with the same recipe."""

from __future__ import annotations

from pydantic import field_validator

from undo.models import PRESETS, build_model
from undo.objectives import LanguageModeling
from undo.params import Mix, Optim, StageParams
from undo.stages.common import fit, mixture, save, summarize


class Params(StageParams):
    role: str | None = None  # base | oracle: how the report names the model (default: the run's name)
    mix: Mix
    optim: Optim
    model: str | None = None  # a preset of undo.models.PRESETS; default: the scale's

    @field_validator("model")
    @classmethod
    def _known_preset(cls, preset):
        if preset is not None and preset not in PRESETS:
            raise ValueError(f"unknown model preset {preset!r}: choose one of {sorted(PRESETS)}")
        return preset


def run(exp, rundir, tracker, params: Params) -> dict:
    model = build_model(params.model or exp.scale.model, exp.tokenizer, seed=params.seed)
    data = mixture(exp, params.mix, params.batch_size, params.seed)
    result = fit(exp, rundir, tracker, model, LanguageModeling(), {"train": data}, params)
    save(exp, rundir, model)
    return summarize(result, model, role=params.role or rundir.final.name, epochs=data.epochs())
