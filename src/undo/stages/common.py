"""Pieces every stage shares: streams of batches, the evaluation callback, training and the run summary."""

from __future__ import annotations

from undo.data.facts import FactSplit
from undo.data.sampling import Mixture, Shard
from undo.evaluate.tasks import evaluate, requested
from undo.experiment import Experiment
from undo.model.models import count_parameters, save_model
from undo.params import Optim, StageParams
from undo.runs.rundir import RunDir
from undo.runs.tracking import Tracker
from undo.training.loop import Evaluation, TrainResult, train
from undo.training.objectives import Objective


def mixture(exp: Experiment, weights: dict[str, float], batch_size: int, seed: int, blocks=None) -> Mixture | Shard:
    """Batches of `batch_size` rows in all, from `blocks(domain)` (default: the domain's training blocks); each
    data-parallel process draws its share of them."""
    blocks = blocks or (lambda domain: exp.blocks(domain, "train"))
    stream = Mixture({d: blocks(d) for d in weights}, weights, batch_size, seed)
    accelerator = exp.accelerator
    return (
        stream
        if accelerator.num_processes == 1
        else Shard(stream, accelerator.process_index, accelerator.num_processes)
    )


def evaluator(exp: Experiment, metrics: list[str] | None = None, held_out: FactSplit | None = None):
    """The named metrics of the setting (default: all of them), with the tasks they need; with `held_out`, on
    the held-out part of that split of the facts."""
    return lambda model: evaluate(model, exp, metrics, held_out)


def measured(exp: Experiment, ref: str, names: list[str] | None = None) -> dict | None:
    """A finished run's own final metrics (`names`, default all), where it measured them all: they stand for the
    step-0 evaluation of a job that starts from its saved model unchanged, which would otherwise measure them
    again."""
    metrics = exp.summary(ref)["metrics"]
    wanted = requested(exp.setting, names)
    return {k: v for k, v in metrics.items() if k in wanted} if wanted <= metrics.keys() else None


def fit(
    exp: Experiment,
    rundir: RunDir,
    tracker: Tracker,
    model,
    objective: Objective,
    streams: dict,
    params: StageParams,
    *,
    optim: Optim | None = None,
    stop=None,
    evaluate=None,
    start_metrics: dict | None = None,
    trial: int | None = None,
) -> TrainResult:
    """Train with the job's optimiser settings (default `params.optim`) and evaluation steps (default: every
    metric), resuming from its checkpoint; a `trial` of a searched attack neither logs its steps nor checkpoints."""
    evaluation = Evaluation(evaluate or evaluator(exp), params.eval_every, params.eval_at, stop, start_metrics)
    desc = f"{rundir.final.parent.name}/{rundir.final.name}" + (f" trial {trial}" if trial else "")
    return train(
        model,
        objective,
        streams,
        optim or params.optim,
        accelerator=exp.accelerator,
        evaluation=evaluation,
        tracker=None if trial else tracker,
        checkpoint=None if trial else rundir.checkpoint,
        desc=desc,
    )


def summarize(result: TrainResult, model, metrics: dict | None = None, **extra) -> dict:
    """What later stages and the report read: final metrics (default: the last evaluation), cost, and anything
    stage-specific."""
    if metrics is None:
        metrics = {k: v for k, v in result.last_eval.items() if k not in ("step", "kind", "tokens", "flops")}
    return {
        "metrics": metrics,
        "steps": result.steps,
        "stop_rule_met": result.stop_rule_met,
        "tokens": result.tokens,
        "frozen_tokens": result.frozen_tokens,
        "flops": result.flops,
        "seconds": round(result.seconds, 2),
        "n_params": count_parameters(model),
        **extra,
    }


def save(exp: Experiment, rundir, model) -> None:
    accelerator = exp.accelerator
    # gathered from every process when the model is sharded (FSDP)
    state = accelerator.get_state_dict(model) if accelerator.num_processes > 1 else None
    if accelerator.is_main_process:
        save_model(accelerator.unwrap_model(model), exp.tokenizer, rundir.path / "model", state)
