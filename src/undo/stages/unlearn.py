"""Unlearning: start from the base model and apply one method (optionally with SAM or RepNoise) using a
forget batch and a retain batch per step."""

from __future__ import annotations

from undo.experiment import BASE
from undo.models import load_model
from undo.stages.common import fit, mixture, save, summarize
from undo.unlearning import make_objective, variant


def run(exp, rundir, tracker, params: dict) -> dict:
    """params: method, args {method options}, base (default pretrain/base), batch_size, optim {..., sam_rho},
    repnoise {alpha, beta} (optional), eval_every, seed."""
    base = params.get("base", BASE)
    seed = params.get("seed", 0)
    model = load_model(exp.finished(base) / "model")
    rundir.record_inputs(base=base)
    objective = make_objective(params["method"], model, params.get("args", {}), seed, params.get("repnoise"))
    setting = exp.setting
    streams = {
        "forget": mixture(exp, {setting.forget_data: 1.0}, params["batch_size"], seed),
        "retain": mixture(exp, {setting.retain_data: 1.0}, params["batch_size"], seed + 1),
    }
    result = fit(exp, tracker, model, objective, streams, params, desc=f"unlearn/{rundir.final.name}")
    save(exp, rundir, model)
    return summarize(result, model, role="unlearned", method=variant(params), base=base, lr=params["optim"]["lr"])
