"""Distillation on output logits: full distillation into a random init, UNDO (a noised copy of the teacher)
and oracle matching (teacher = oracle, student = the base model or a random init)."""

from __future__ import annotations

import copy
from typing import Annotated, Literal

from pydantic import Field, model_validator

from undo.compute import percent_of_oracle
from undo.errors import UserError
from undo.models import build_like
from undo.noise import shrink_and_perturb
from undo.objectives import Distillation
from undo.params import Float, Mix, Optim, RunRef, StageParams
from undo.selection import resolve
from undo.stages.common import evaluator, fit, mixture, save, summarize
from undo.stopping import retain_recovered

ROLES = {"full": "distilled", "undo": "undo", "match": "matched"}


class Params(StageParams):
    kind: Literal["full", "undo", "match"]
    teacher: RunRef  # e.g. unlearn/selected:maxent
    student: Literal["random"] | RunRef = "random"  # oracle matching only: a random init or a run
    alpha: Annotated[Float, Field(ge=0, le=1)] | None = None  # UNDO's shrink
    beta: Annotated[Float, Field(ge=0, le=1)] | None = None  # UNDO's perturbation
    mix: Mix
    optim: Optim
    tolerance: Annotated[Float, Field(ge=0)] | None = None  # stop once within it of the teacher; None: fixed steps

    @model_validator(mode="after")
    def _kind_options(self):
        if self.kind == "undo" and (self.alpha is None or self.beta is None):
            raise ValueError("UNDO needs alpha and beta")
        if self.kind != "undo" and (self.alpha is not None or self.beta is not None):
            raise ValueError(f"alpha and beta apply to UNDO only, not to kind {self.kind!r}")
        if self.kind != "match" and self.student != "random":
            raise ValueError(f"student applies to oracle matching only, not to kind {self.kind!r}")
        return self

    def inputs(self) -> dict[str, str]:
        return {"teacher": self.teacher, **({} if self.student == "random" else {"student": self.student})}


def run(exp, rundir, tracker, params: Params) -> dict:
    kind, seed = params.kind, params.seed
    teacher_ref = resolve(exp, params.teacher)
    student_ref = None if params.student == "random" else resolve(exp, params.student)
    teacher = exp.load_model(teacher_ref)
    teacher_summary = exp.summary(teacher_ref)
    if kind == "undo":
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
    student_init = "noised-teacher" if kind == "undo" else params.student
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
        Distillation(teacher, params.chunk_rows),
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
        role=ROLES[kind],
        kind=kind,
        teacher=teacher_ref,
        method=method,
        student_init=student_init,
        alpha=params.alpha,
        beta=params.beta,
        seed=seed,
        teacher_metrics=teacher_summary["metrics"],
        compute_pct=percent_of_oracle(exp, result.flops),
    )
