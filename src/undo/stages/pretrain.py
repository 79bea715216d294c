"""Pretraining from random initialisation: the base model (retain + forget data) and the data-filtered oracle
(retain data only), with the same recipe. A setting that starts from a pretrained checkpoint (WMDP) instead
names it as the base's `start`: the run evaluates it and records where it is, without copying its weights."""

from __future__ import annotations

from pydantic import field_validator, model_validator

from undo.evaluate.tasks import evaluate
from undo.experiment import Experiment
from undo.io.files import write_json
from undo.model.models import PRESETS, build_model, load_start
from undo.params import Mix, Optim, StageParams
from undo.runs.rundir import RunDir
from undo.runs.tracking import Tracker
from undo.stages.common import fit, mixture, save, summarize
from undo.training.loop import TrainResult
from undo.training.objectives import LanguageModeling

START = "start.json"  # in a run folder: the checkpoint the run stands for, in place of model/


class Params(StageParams):
    role: str | None = None  # base | oracle: how the report names the model (default: the run's name)
    start: str | None = None  # a save_pretrained folder or hub id to start from, instead of pretraining
    mix: Mix | None = None
    optim: Optim | None = None
    model: str | None = None  # a preset of undo.model.models.PRESETS; default: the scale's

    @field_validator("model")
    @classmethod
    def _known_preset(cls, preset):
        if preset is not None and preset not in PRESETS:
            raise ValueError(f"unknown model preset {preset!r}: choose one of {sorted(PRESETS)}")
        return preset

    @model_validator(mode="after")
    def _start_or_recipe(self):
        missing = [key for key in ("mix", "optim") if getattr(self, key) is None]
        if self.start is None and missing:
            raise ValueError(f"{' and '.join(missing)} missing: pretraining needs a mix and optim (or a start)")
        if self.start is not None and (self.mix is not None or self.optim is not None):
            raise ValueError("a start checkpoint is evaluated as it is: drop mix and optim")
        return self


def run(exp: Experiment, rundir: RunDir, tracker: Tracker, params: Params) -> dict:
    role = params.role or rundir.final.name
    if params.start is not None:
        model = load_start(params.start).to(exp.accelerator.device)
        metrics = evaluate(model, exp)
        tracker.log({"kind": "eval", **metrics}, 0)
        write_json(rundir.path / START, {"source": params.start})
        return summarize(TrainResult(), model, metrics, role=role)
    model = build_model(params.model or exp.scale.model, exp.tokenizer, seed=params.seed)
    data = mixture(exp, params.mix, params.batch_size, params.seed)
    result = fit(exp, rundir, tracker, model, LanguageModeling(params.chunk_rows), {"train": data}, params)
    save(exp, rundir, model)
    return summarize(result, model, role=role, epochs=data.epochs())
