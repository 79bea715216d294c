"""Pretraining from random initialisation: the base model (retain + forget data) and the data-filtered oracle
(retain data only), with the same recipe."""

from __future__ import annotations

from undo.models import build_model
from undo.objectives import LanguageModeling
from undo.stages.common import fit, mixture, save, summarize


def run(exp, rundir, tracker, params: dict) -> dict:
    """params: mix {domain: weight}, batch_size, optim {...}, eval_every, seed, model (preset; default: scale's)."""
    model = build_model(params.get("model", exp.scale.model), exp.tokenizer, seed=params.get("seed", 0))
    data = mixture(exp, params["mix"], params["batch_size"], params.get("seed", 0))
    result = fit(exp, tracker, model, LanguageModeling(), {"train": data}, params, desc=f"pretrain/{rundir.final.name}")
    save(exp, rundir, model)
    return summarize(result, model, role=params.get("role", rundir.final.name), epochs=data.epochs())
