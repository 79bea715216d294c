"""The one training loop used by every stage (pretraining, unlearning, distillation, relearning).

Stages differ only in the batches they draw, the objective computed from them and when they stop; the loop owns
gradient accumulation, SAM, clipping, the learning-rate schedule, periodic evaluation, divergence checks, token
and FLOP counting, logging, progress and checkpoints.

Compute is counted once, here (`training_flops`): 6N FLOPs per token through the trained model (forward and
backward; SAM's second pass counted again) and 2N per token through a forward-only model (a distillation
teacher, a frozen reference copy), N the models' unique parameters; evaluations are not counted.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from undo.errors import UserError
from undo.model.fast_paths import FastPaths, accelerate
from undo.model.models import count_parameters, unique_parameters
from undo.params import Optim
from undo.training.checkpoint import Checkpoint
from undo.training.objectives import Objective
from undo.training.optimizer import make_optimizer, make_scheduler, restore, sam_perturb

LOG_EVERY = 10  # steps averaged into one training record
# Signals that ask a run to stop: SLURM's SIGTERM (before preemption or at the time limit) and submitit's
# preemption and time-out signal (USR2, sent before the time limit when submitit runs the job).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR2)

Batch = dict[str, dict[str, torch.Tensor]]  # {stream name: {"input_ids", "loss_mask"}}


def training_flops(n_params: int, tokens: int, frozen_params: int = 0, frozen_tokens: int = 0) -> float:
    """6N per token through a trained model (forward + backward), 2N per token through a forward-only one."""
    return 6.0 * n_params * tokens + 2.0 * frozen_params * frozen_tokens


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


@dataclass
class Evaluation:
    """When the loop measures the model and whether it stops: at step 0 (where `start`, the metrics of the model
    as it comes in, is known, it stands for that measurement), every `every` steps, at the steps in `at` and at
    the end; training stops at the first measurement for which `stop(metrics)` is true."""

    measure: Callable[[nn.Module], dict] | None = None
    every: int = 0
    at: tuple[int, ...] = ()
    stop: Callable[[dict], bool] | None = None
    start: dict | None = None

    def due(self, step: int, last: int) -> bool:
        return bool(self.every and step % self.every == 0) or step in self.at or step == last


@dataclass(eq=False)
class TrainState:
    """Everything a resumed run needs to go on exactly as an uninterrupted one; `state_dict` is what a checkpoint
    holds, `load_state_dict` puts it back."""

    model: nn.Module  # as the accelerator prepared it (possibly wrapped for data parallelism)
    objective: Objective
    params: list[nn.Parameter]  # the trained ones
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    streams: dict[str, Iterator[dict[str, torch.Tensor]]]  # each with state_dict/load_state_dict to checkpoint
    accelerator: object
    counted: tuple[int, int]  # unique parameters of the trained and of the forward-only model, for FLOPs
    result: TrainResult = field(default_factory=TrainResult)
    window: dict[str, float] = field(default_factory=dict)  # per-step logs summed since the last record
    step: int = 0

    @classmethod
    def start(cls, model: nn.Module, objective: Objective, streams: dict, optim: Optim, accelerator) -> TrainState:
        """Mark the objective's parameters trainable (default: all), build the optimiser and its schedule, and move
        the model (and any forward-only model of the objective) to the accelerator's device, on the fast paths of
        that device (undo.model.fast_paths)."""
        missing = [name for name in objective.streams if name not in streams]
        if missing:
            raise UserError(
                f"{type(objective).__name__} needs the data streams {list(objective.streams)}, "
                f"missing {missing}: check the setting's domains and the grid"
            )
        counted = (count_parameters(model), count_parameters(objective.frozen) if objective.frozen is not None else 0)
        params = objective.trainable(model)
        if params is not None:
            model.requires_grad_(False)
            for p in params:
                p.requires_grad_(True)
        else:
            params = [p for p in unique_parameters(model) if p.requires_grad]
        paths = FastPaths.for_device(accelerator.device)
        optimizer = make_optimizer(params, optim, fused=paths.fused_optimizer)
        scheduler = make_scheduler(optimizer, optim)
        model, optimizer = accelerator.prepare(accelerate(model, paths), optimizer)
        if objective.frozen is not None:
            accelerate(objective.frozen.to(accelerator.device).eval().requires_grad_(False), paths)
        return cls(model, objective, params, optimizer, scheduler, streams, accelerator, counted)

    def state_dict(self, tracker=None) -> dict:
        return {
            "step": self.step,
            "model": self.accelerator.unwrap_model(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "streams": {name: it.state_dict() for name, it in self.streams.items()},
            "objective": self.objective.state_dict(),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "result": asdict(self.result),
            "window": dict(self.window),
            "records": tracker.records() if tracker is not None else "",
        }

    def load_state_dict(self, state: dict, tracker=None) -> None:
        self.step = state["step"]
        self.accelerator.unwrap_model(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        for name, it in self.streams.items():
            it.load_state_dict(state["streams"][name])
        if "objective" in state:  # checkpoints saved before objectives kept their random state have none
            self.objective.load_state_dict(state["objective"])
        torch.set_rng_state(state["rng"])
        if state["cuda_rng"]:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.result = TrainResult(**state["result"])
        self.window = dict(state["window"])
        if tracker is not None:
            tracker.restore(state["records"])

    def next_batches(self, micro_batches: int) -> list[Batch]:
        """A step's micro-batches, one draw from every stream each, on the training device."""
        device = self.accelerator.device
        draw = lambda it: {k: v.to(device, non_blocking=True) for k, v in next(it).items()}  # noqa: E731
        return [{name: draw(it) for name, it in self.streams.items()} for _ in range(micro_batches)]


def step(state: TrainState, micro: list[Batch], optim: Optim, desc: str) -> tuple[float, dict]:
    """One optimiser step over the micro-batches: accumulate the gradient (with SAM: again at theta + rho g/|g|,
    g from the whole step's batch), clip, step; returns the step's mean loss and logs."""
    loss, logs = _accumulate(state, micro)
    if not math.isfinite(loss):
        raise UserError(f"{desc}: loss became {loss} at step {state.step} (lr {optim.lr:g}): lower the learning rate")
    if optim.sam_rho > 0:
        saved = sam_perturb(state.params, optim.sam_rho)
        state.optimizer.zero_grad(set_to_none=True)
        _accumulate(state, micro)
        restore(state.params, saved)
    if optim.grad_clip:
        state.accelerator.clip_grad_norm_(state.params, optim.grad_clip)
    state.optimizer.step()
    state.scheduler.step()
    state.optimizer.zero_grad(set_to_none=True)
    return loss, logs


def _accumulate(state: TrainState, micro: list[Batch]) -> tuple[float, dict]:
    """Backward over the micro-batches of one step; returns the mean loss and mean logs."""
    model, objective, accelerator = state.model, state.objective, state.accelerator
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


def _count(state: TrainState, micro: list[Batch], optim: Optim) -> None:
    """Tokens through the trained and the forward-only model in this step (all processes), and their FLOPs."""
    world = state.accelerator.num_processes
    tokens = sum(part["input_ids"].numel() for batch in micro for part in batch.values()) * world
    frozen_streams = state.objective.frozen_streams
    frozen = sum(batch[name]["input_ids"].numel() for batch in micro for name in frozen_streams) * world
    passes = 2 if optim.sam_rho > 0 else 1  # SAM's second forward and backward
    n_params, n_frozen = state.counted
    result = state.result
    result.steps = state.step
    result.tokens += tokens
    result.frozen_tokens += frozen
    result.flops += training_flops(n_params, passes * tokens, n_frozen, frozen)


class Interrupted(BaseException):
    """A stop signal ended the run after its checkpoint was saved: rerunning it resumes from there."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum


class StopSignals:
    """While training, a stop signal only raises a flag: the loop finishes its step, saves the checkpoint, then
    hands the signal on (`hand_on`): to submitit's handler where submitit runs the job (it requeues the job,
    which resumes), else as `Interrupted`, which ends the launch with the signal's exit code."""

    def __init__(self):
        self.signum: int | None = None
        self.previous: dict = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # Python takes signals in the main thread only
            self.previous = {sig: signal.signal(sig, self._raise_flag) for sig in STOP_SIGNALS}
        return self

    def _raise_flag(self, signum: int, frame) -> None:
        self.signum = signum

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}

    def hand_on(self, desc: str, step: int, saved: bool) -> None:
        previous, name = self.previous.get(self.signum), signal.Signals(self.signum).name
        self.__exit__()
        where = "its checkpoint is saved: rerun it to resume" if saved else "it keeps no checkpoint"
        tqdm.write(f"[{desc}] stopped by {name} after step {step}; {where}", file=sys.stderr)
        if callable(previous):  # submitit's: requeue the job
            previous(self.signum, None)
        raise Interrupted(self.signum, f"{desc}: stopped by {name} after step {step}; {where}")


class Progress:
    """The progress bar, one line per evaluation, and the JSONL/wandb records (a training record averages the
    steps since the last one)."""

    def __init__(self, desc: str, steps: int, accelerator, tracker=None):
        self.desc, self.tracker, self.main = desc, tracker, accelerator.is_main_process
        self.started = time.perf_counter()
        self.bar = tqdm(total=steps, desc=desc, disable=not self.main, leave=False, dynamic_ncols=True)

    def resumed(self, state: TrainState, folder) -> None:
        self.bar.update(state.step)
        tqdm.write(f"[{self.desc}] resumed from step {state.step} ({folder})", file=sys.stderr)

    def stepped(self, state: TrainState, loss: float, logs: dict, last: int) -> None:
        for key, value in {"loss": loss, **logs}.items():
            state.window[key] = state.window.get(key, 0.0) + value
        self.bar.update(1)
        if state.step % LOG_EVERY == 0 or state.step == last:
            self.record(state)

    def record(self, state: TrainState) -> None:
        """Average the per-step logs since the last record into one training record."""
        n = state.step % LOG_EVERY or LOG_EVERY
        averaged = {k: v / n for k, v in state.window.items()}
        state.window.clear()
        self.bar.set_postfix(loss=f"{averaged['loss']:.4f}")
        if self.tracker is not None:
            lr = state.scheduler.get_last_lr()[0]
            seconds = time.perf_counter() - self.started
            counts = {"tokens": state.result.tokens, "flops": state.result.flops, "seconds": seconds}
            self.tracker.log({"kind": "train", **averaged, "lr": lr, **counts}, state.step)

    def evaluated(self, state: TrainState, metrics: dict) -> None:
        record = {"kind": "eval", **metrics, "tokens": state.result.tokens, "flops": state.result.flops}
        state.result.evals.append({"step": state.step, **record})
        if self.tracker is not None:
            self.tracker.log(record, state.step)
        if self.main:
            shown = " ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, float))
            tqdm.write(f"[{self.desc}] step {state.step}: {shown}", file=sys.stderr)


def measure(state: TrainState, evaluation: Evaluation, progress: Progress, known: dict | None = None) -> bool:
    """Evaluate the model (or take `known` metrics for it) and record them; whether the stop rule is met."""
    if evaluation.measure is None:
        return False
    if known is None:
        state.model.eval()
        metrics = evaluation.measure(state.accelerator.unwrap_model(state.model))
        state.model.train()
    else:
        metrics = dict(known)
    progress.evaluated(state, metrics)
    return evaluation.stop is not None and evaluation.stop(metrics)


def train(
    model: nn.Module,
    objective: Objective,
    streams: dict[str, Iterator[dict[str, torch.Tensor]]],
    optim: Optim,
    *,
    accelerator,
    evaluation: Evaluation | None = None,
    tracker=None,
    checkpoint: Checkpoint | None = None,
    desc: str = "train",
) -> TrainResult:
    """Train `model` in place for up to `optim.steps` steps, evaluating and stopping as `evaluation` says. With a
    checkpoint, the training state is saved when due and a saved state is resumed."""
    evaluation = evaluation or Evaluation()
    state = TrainState.start(model, objective, streams, optim, accelerator)
    saved = checkpoint.load() if checkpoint is not None else None
    state.model.train()
    progress = Progress(desc, optim.steps, accelerator, tracker)
    try:
        with StopSignals() as signals:
            if saved is None:
                state.result.stop_rule_met = measure(state, evaluation, progress, evaluation.start)
            else:
                state.load_state_dict(saved, tracker)
                progress.resumed(state, checkpoint.folder)
            while state.step < optim.steps and not state.result.stop_rule_met:
                state.step += 1
                micro = state.next_batches(optim.grad_accum)
                loss, logs = step(state, micro, optim, desc)
                _count(state, micro, optim)
                progress.stepped(state, loss, logs, optim.steps)
                if evaluation.due(state.step, optim.steps):
                    state.result.stop_rule_met = measure(state, evaluation, progress)
                more = state.step < optim.steps and not state.result.stop_rule_met
                if checkpoint is not None and (signals.signum or checkpoint.due(state.step)) and more:
                    checkpoint.save(state.state_dict(tracker))
                if signals.signum is not None and more:
                    signals.hand_on(desc, state.step, saved=checkpoint is not None)
            if state.window:  # stopped between two records
                progress.record(state)
            if checkpoint is not None and checkpoint.keep:
                checkpoint.save(state.state_dict(tracker))
    finally:
        progress.bar.close()
        objective.close()
        accelerator.free_memory()  # drop accelerate's references: a sweep in one process must not pile them up
    state.result.seconds = time.perf_counter() - progress.started
    return state.result
