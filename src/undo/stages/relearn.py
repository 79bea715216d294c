"""Relearning attack: finetune a model with plain next-token CE on forget data at a constant learning rate and
record how fast the forget metric comes back."""

from __future__ import annotations

from undo.models import load_model
from undo.objectives import LanguageModeling
from undo.selection import resolve
from undo.stages.common import evaluator, fit, mixture, save, summarize


def run(exp, rundir, tracker, params: dict) -> dict:
    """params: model (run ref), lr, steps, batch_size, grad_accum, eval_every, mix (default: forget domain
    only; the mixed-data attack adds the retain domain), seed, save_model (default False)."""
    setting = exp.setting
    target = resolve(exp, params["model"])
    model = load_model(exp.finished(target) / "model")
    rundir.record_inputs(model=target)
    seed = params.get("seed", 0)
    data = mixture(exp, params.get("mix", {setting.forget_data: 1.0}), params["batch_size"], seed)
    optim = {
        "lr": params["lr"],
        "steps": params["steps"],
        "weight_decay": params.get("weight_decay", 0.0),
        "grad_accum": params.get("grad_accum", 1),
    }
    # The attack's curve needs the forget metric only, often; the retain metric is measured once at the end.
    result = fit(
        exp,
        tracker,
        model,
        LanguageModeling(),
        {"train": data},
        {**params, "optim": optim},
        evaluate=evaluator(exp, [setting.forget.name]),
        desc=f"relearn/{rundir.final.name}",
    )
    retain = evaluator(exp, [setting.retain.name])(model)
    if params.get("save_model", False):
        save(exp, rundir, model)
    curve = [{k: v for k, v in e.items() if k not in ("kind", "tokens", "flops")} for e in result.evals]
    summary = summarize(
        result,
        model,
        role="attack",
        target=target,
        target_ref=params["model"],
        lr=params["lr"],
        curve=curve,
        epochs=data.epochs(),
    )
    summary["metrics"].update(retain)
    return summary
