"""Distillation on output logits. A job's `role` says what its student is: "distilled", full distillation into a
random init; "undo", a noised copy of the teacher (UNDO); "matched", oracle matching (teacher = oracle, student =
the base model or a random init); and the control "reset", the teacher itself with its forget-vocabulary embedding
rows re-initialised, without any training. The student may be taught a view of the teacher (its forget
vocabulary masked, or its top k plus a uniform tail)."""

from __future__ import annotations

import copy
from typing import Annotated, Literal

from pydantic import Field, model_validator

from undo.errors import UserError
from undo.experiment import Experiment
from undo.model import losses
from undo.model.models import build_like
from undo.model.noise import shrink_and_perturb
from undo.params import Count, Float, Mix, Optim, RunRef, StageParams
from undo.runs.names import DISTILLED, MATCHED, ORACLE, RESET, UNDO
from undo.runs.rundir import RunDir
from undo.runs.selection import resolve
from undo.runs.tracking import Tracker
from undo.stages.common import evaluator, fit, mixture, save, summarize
from undo.stages.forget_vocab import forget_vocabulary, reset_rows
from undo.training.loop import TrainResult
from undo.training.objectives import Distillation
from undo.training.stopping import retain_recovered


def percent_of_oracle(exp: Experiment, flops: float) -> float | None:
    """FLOPs as a percentage of the data-filtered oracle's pretraining, counted the same way (undo.training.loop:
    6N per token of its one pass over its data); None when the oracle has not been pretrained in this tree."""
    if ORACLE not in exp.finished_runs("pretrain"):
        return None
    return 100.0 * flops / exp.summary(ORACLE)["flops"]


class Params(StageParams):
    role: Literal[DISTILLED, UNDO, MATCHED, RESET]  # what the student is: see the module's docstring
    teacher: RunRef  # e.g. unlearn/selected:maxent
    student: Literal["random"] | RunRef = "random"  # oracle matching only: a random init or a run
    alpha: Annotated[Float, Field(ge=0, le=1)] | None = None  # UNDO's shrink
    beta: Annotated[Float, Field(ge=0, le=1)] | None = None  # UNDO's perturbation
    mix: Mix | None = None  # every role but reset, which does not train
    optim: Optim | None = None
    tolerance: Annotated[Float, Field(ge=0)] | None = None  # stop once within it of the teacher; None: fixed steps
    teacher_view: Literal["full", "mask-forget", "top-k"] = "full"  # what the student is taught (undo.model.losses)
    top_k: Count | None = None  # the top-k view's k

    @model_validator(mode="after")
    def _role_options(self):
        training = self.role != RESET
        if training and (self.mix is None or self.optim is None):
            raise ValueError(f"role {self.role!r} trains: it needs mix and optim")
        if not training and (self.mix, self.optim, self.tolerance) != (None, None, None):
            raise ValueError(f"role {RESET!r} does not train: drop mix, optim and tolerance")
        if (self.teacher_view == "top-k") != (self.top_k is not None):
            raise ValueError("teacher_view 'top-k' needs top_k, and top_k needs teacher_view 'top-k'")
        if self.role == UNDO and (self.alpha is None or self.beta is None):
            raise ValueError("UNDO needs alpha and beta")
        if self.role != UNDO and (self.alpha is not None or self.beta is not None):
            raise ValueError(f"alpha and beta apply to UNDO only, not to role {self.role!r}")
        if self.role != MATCHED and self.student != "random":
            raise ValueError(f"student applies to oracle matching only, not to role {self.role!r}")
        return self

    def inputs(self) -> dict[str, str]:
        return {"teacher": self.teacher, **({} if self.student == "random" else {"student": self.student})}


def teacher_view(exp: Experiment, params: Params):
    """The view of the teacher the student is taught (None: its full distribution)."""
    if params.teacher_view == "mask-forget":
        return losses.MaskTokens(forget_vocabulary(exp).to(exp.accelerator.device))  # moved once, not per chunk
    if params.teacher_view == "top-k":
        return losses.TopKTail(params.top_k)
    return None


def reset_control(exp: Experiment, rundir, teacher, teacher_ref: str, teacher_summary: dict, seed: int) -> dict:
    """The teacher with the rows of its forget vocabulary in the (tied) embedding re-initialised: what removing
    the forget tokens' embeddings alone buys, with no distillation."""
    tokens = forget_vocabulary(exp)
    reset_rows(teacher, tokens, seed)
    rundir.record_inputs(exp, teacher=teacher_ref)
    save(exp, rundir, teacher)
    return summarize(
        TrainResult(),
        teacher,
        evaluator(exp)(teacher),
        role=RESET,
        teacher=teacher_ref,
        method=teacher_summary.get("method", teacher_summary.get("role")),
        reset_tokens=int(tokens.sum()),
        seed=seed,
        teacher_metrics=teacher_summary["metrics"],
        compute_pct=0.0,
    )


def run(exp: Experiment, rundir: RunDir, tracker: Tracker, params: Params) -> dict:
    role, seed = params.role, params.seed
    teacher_ref = resolve(exp, params.teacher)
    student_ref = None if params.student == "random" else resolve(exp, params.student)
    teacher = exp.load_model(teacher_ref)
    teacher_summary = exp.summary(teacher_ref)
    if role == RESET:
        return reset_control(exp, rundir, teacher, teacher_ref, teacher_summary, seed)
    if role == UNDO:
        student = shrink_and_perturb(copy.deepcopy(teacher), params.alpha, params.beta, seed)
    elif params.student == "random":
        student = build_like(teacher, seed)
    else:
        student = exp.load_model(student_ref)
    if student.config.vocab_size != teacher.config.vocab_size:
        raise UserError(
            f"teacher {teacher_ref} has a vocabulary of {teacher.config.vocab_size} tokens but the "
            f"student has {student.config.vocab_size}: distill between models of one tokenizer"
        )
    student_init = "noised-teacher" if role == UNDO else params.student
    rundir.record_inputs(exp, teacher=teacher_ref, **({"student": student_ref} if student_ref else {}))

    retain = exp.setting.retain
    stop = None
    if params.tolerance is not None:
        stop = retain_recovered(retain, teacher_summary["metrics"][retain.name], params.tolerance)
    data = mixture(exp, params.mix, params.batch_size, seed)
    # The stop rule needs the retain metric only; every metric is measured once at the end.
    result = fit(
        exp,
        rundir,
        tracker,
        student,
        Distillation(teacher, params.chunk_rows, teacher_view(exp, params)),
        {"train": data},
        params,
        stop=stop,
        evaluate=evaluator(exp, [retain.name]),
    )
    save(exp, rundir, student)
    metrics = evaluator(exp)(exp.accelerator.unwrap_model(student))
    method = teacher_summary.get("method", teacher_summary.get("role"))
    return summarize(
        result,
        student,
        metrics,
        role=role,
        teacher=teacher_ref,
        method=method,
        student_init=student_init,
        alpha=params.alpha,
        beta=params.beta,
        teacher_view=params.teacher_view,
        top_k=params.top_k,
        seed=seed,
        teacher_metrics=teacher_summary["metrics"],
        compute_pct=percent_of_oracle(exp, result.flops),
    )
