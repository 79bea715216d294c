"""The one training loop used by every stage (pretraining, unlearning, distillation, relearning).

Stages differ only in the batches they draw, the objective computed from them and when they stop; the loop
owns gradient accumulation, SAM, clipping, the learning-rate schedule, periodic evaluation, divergence checks,
token and FLOP counting, logging and progress.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from undo.checkpoint import Checkpoint
from undo.errors import UserError
from undo.models import count_parameters, unique_parameters
from undo.params import Optim


class Objective:
    """A loss over a step's batches: `{stream name: {"input_ids", "loss_mask"}}` -> (loss, logs).

    `frozen` is a forward-only model (a teacher or a frozen reference copy) that reads the streams named in
    `frozen_streams`; it is moved to the training device and counted at 2N FLOPs per token it reads.
    """

    streams: tuple[str, ...] = ("train",)  # the batch streams it reads
    frozen: nn.Module | None = None
    frozen_streams: tuple[str, ...] = ()

    def trainable(self, model: nn.Module) -> list[nn.Parameter] | None:
        """The parameters to train (None: all of them)."""
        return None

    def __call__(self, model: nn.Module, batch: dict[str, dict[str, torch.Tensor]]) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def close(self) -> None:
        """Release hooks or other resources held on the model."""


@dataclass
class TrainResult:
    steps: int = 0
    tokens: int = 0  # tokens through the trained model (all processes)
    frozen_tokens: int = 0  # tokens through the forward-only model
    flops: float = 0.0
    seconds: float = 0.0
    stop_rule_met: bool = False
    evals: list[dict] = field(default_factory=list)

    @property
    def last_eval(self) -> dict:
        return self.evals[-1] if self.evals else {}


def make_scheduler(optimizer: torch.optim.Optimizer, optim: Optim):
    from transformers import get_constant_schedule_with_warmup, get_cosine_with_min_lr_schedule_with_warmup

    if optim.min_lr is None or optim.min_lr == optim.lr:
        return get_constant_schedule_with_warmup(optimizer, optim.warmup)
    return get_cosine_with_min_lr_schedule_with_warmup(
        optimizer, optim.warmup, max(optim.steps, 1), min_lr=optim.min_lr
    )


def make_optimizer(params: list[nn.Parameter], optim: Optim) -> torch.optim.AdamW:
    """Weight decay on matrices only; norms' gains are not decayed."""
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [
        {"params": decay, "weight_decay": optim.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=optim.lr, betas=optim.betas)


def sam_perturb(params: list[nn.Parameter], rho: float) -> list[torch.Tensor]:
    """Move the weights to theta + rho * g / ||g|| (g: the current gradient); returns the saved weights."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    norm = torch.sqrt(sum(g.float().pow(2).sum() for g in grads))
    saved = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p, g in zip(params, grads, strict=False):
            p.add_(g, alpha=rho / (norm.item() + 1e-12))
    return saved


def restore(params: list[nn.Parameter], saved: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for p, s in zip(params, saved, strict=False):
            p.copy_(s)


def _to_device(batch: dict, device) -> dict:
    return {name: {k: v.to(device, non_blocking=True) for k, v in part.items()} for name, part in batch.items()}


def _batch_tokens(batch: dict, names=None) -> int:
    return sum(part["input_ids"].numel() for name, part in batch.items() if names is None or name in names)


def train(
    model: nn.Module,
    objective: Objective,
    streams: dict[str, Iterator[dict[str, torch.Tensor]]],
    optim: Optim,
    *,
    accelerator,
    tracker=None,
    evaluate: Callable[[nn.Module], dict] | None = None,
    eval_every: int = 0,
    eval_at: tuple[int, ...] = (),
    stop: Callable[[dict], bool] | None = None,
    checkpoint: Checkpoint | None = None,
    log_every: int = 10,
    desc: str = "train",
    start_metrics: dict | None = None,
) -> TrainResult:
    """Train `model` in place for up to `optim.steps` steps; evaluates at step 0, every `eval_every` steps, at the
    steps in `eval_at` and at the end, and stops early once `stop(eval metrics)` is true. `start_metrics`, where
    the caller already has what `evaluate` gives for the model as it comes in, stand for the step-0 evaluation.
    With a checkpoint, the whole training state is saved when due and a saved state is resumed (the streams must
    have `state_dict`/`load_state_dict`)."""
    missing = [name for name in objective.streams if name not in streams]
    if missing:
        raise UserError(
            f"{type(objective).__name__} needs the data streams {list(objective.streams)}, "
            f"missing {missing}: check the setting's domains and the grid"
        )
    params = objective.trainable(model)
    if params is not None:
        model.requires_grad_(False)
        for p in params:
            p.requires_grad_(True)
    else:
        params = [p for p in unique_parameters(model) if p.requires_grad]
    n_params = count_parameters(model)
    n_frozen = count_parameters(objective.frozen) if objective.frozen is not None else 0
    optimizer = make_optimizer(params, optim)
    scheduler = make_scheduler(optimizer, optim)
    model, optimizer = accelerator.prepare(model, optimizer)
    if objective.frozen is not None:
        objective.frozen.to(accelerator.device).eval().requires_grad_(False)
    world = accelerator.num_processes
    result = TrainResult()
    start = time.perf_counter()

    def run_eval(step: int, known: dict | None = None) -> bool:
        if evaluate is None:
            return False
        if known is None:
            model.eval()
            metrics = evaluate(accelerator.unwrap_model(model))
            model.train()
        else:
            metrics = dict(known)
        record = {"kind": "eval", **metrics, "tokens": result.tokens, "flops": result.flops}
        result.evals.append({"step": step, **record})
        if tracker is not None:
            tracker.log(record, step)
        if accelerator.is_main_process:
            shown = " ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, float))
            tqdm.write(f"[{desc}] step {step}: {shown}", file=sys.stderr)
        return stop is not None and stop(metrics)

    window: dict[str, float] = {}

    def log_window(step: int) -> None:
        """Average the per-step logs since the last record into one training record."""
        n = step % log_every or log_every
        averaged = {k: v / n for k, v in window.items()}
        window.clear()
        bar.set_postfix(loss=f"{averaged['loss']:.4f}")
        if tracker is not None:
            tracker.log(
                {
                    "kind": "train",
                    **averaged,
                    "lr": scheduler.get_last_lr()[0],
                    "tokens": result.tokens,
                    "flops": result.flops,
                    "seconds": time.perf_counter() - start,
                },
                step,
            )

    def save_state(step: int) -> None:
        checkpoint.save(
            {
                "step": step,
                "model": accelerator.unwrap_model(model).state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "streams": {name: it.state_dict() for name, it in streams.items()},
                "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "result": asdict(result),
                "window": dict(window),
                "records": tracker.records() if tracker is not None else "",
            }
        )

    saved = checkpoint.load() if checkpoint is not None else None
    model.train()
    bar = tqdm(total=optim.steps, desc=desc, disable=not accelerator.is_main_process, leave=False, dynamic_ncols=True)
    try:
        if saved is None:
            result.stop_rule_met = run_eval(0, start_metrics)
            step = 0
        else:
            step = saved["step"]
            accelerator.unwrap_model(model).load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            for name, it in streams.items():
                it.load_state_dict(saved["streams"][name])
            torch.set_rng_state(saved["rng"])
            if saved["cuda_rng"]:
                torch.cuda.set_rng_state_all(saved["cuda_rng"])
            result = TrainResult(**saved["result"])
            window.update(saved["window"])
            if tracker is not None:
                tracker.restore(saved["records"])
            bar.update(step)
            tqdm.write(f"[{desc}] resumed from step {step} ({checkpoint.folder})", file=sys.stderr)
        while step < optim.steps and not result.stop_rule_met:
            step += 1
            micro = [
                _to_device({name: next(it) for name, it in streams.items()}, accelerator.device)
                for _ in range(optim.grad_accum)
            ]
            loss, logs = _accumulate_grads(model, objective, micro, accelerator)
            if not math.isfinite(loss):
                raise UserError(f"{desc}: loss became {loss} at step {step} (lr {optim.lr:g}): lower the learning rate")
            if optim.sam_rho > 0:
                saved = sam_perturb(params, optim.sam_rho)
                optimizer.zero_grad(set_to_none=True)
                _accumulate_grads(model, objective, micro, accelerator)
                restore(params, saved)
            if optim.grad_clip:
                accelerator.clip_grad_norm_(params, optim.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)

            passes = 2 if optim.sam_rho > 0 else 1
            tokens = sum(_batch_tokens(b) for b in micro) * world
            frozen_tokens = sum(_batch_tokens(b, objective.frozen_streams) for b in micro) * world
            result.steps = step
            result.tokens += tokens
            result.frozen_tokens += frozen_tokens
            result.flops += passes * 6 * n_params * tokens + 2 * n_frozen * frozen_tokens
            for key, value in {"loss": loss, **logs}.items():
                window[key] = window.get(key, 0.0) + value
            bar.update(1)
            if step % log_every == 0 or step == optim.steps:
                log_window(step)
            if (eval_every and step % eval_every == 0) or step in eval_at or step == optim.steps:
                result.stop_rule_met = run_eval(step)
            if checkpoint is not None and checkpoint.due(step) and step < optim.steps and not result.stop_rule_met:
                save_state(step)
        if window:  # stopped between two records
            log_window(step)
        if checkpoint is not None and checkpoint.keep:
            save_state(step)
    finally:
        bar.close()
        objective.close()
        accelerator.free_memory()  # drop accelerate's references: a sweep in one process must not pile them up
    result.seconds = time.perf_counter() - start
    return result


def _accumulate_grads(model, objective: Objective, micro: list[dict], accelerator) -> tuple[float, dict]:
    """Backward over the micro-batches of one step; returns the mean loss and mean logs."""
    total, logs = 0.0, {}
    for i, batch in enumerate(micro):
        sync = i == len(micro) - 1
        with nullcontext() if sync else accelerator.no_sync(model), accelerator.autocast():
            loss, step_logs = objective(model, batch)
        accelerator.backward(loss / len(micro))
        if accelerator.num_processes > 1:  # the loss of the global batch, as one process would report it
            loss = accelerator.reduce(loss.detach(), reduction="mean")
        total += loss.item() / len(micro)
        for key, value in step_logs.items():
            logs[key] = logs.get(key, 0.0) + float(value) / len(micro)
    return total, logs
