"""Distillation on output logits: full distillation into a random init, UNDO (a noised copy of the teacher)
and oracle matching (teacher = oracle, student = the base model or a random init)."""

from __future__ import annotations

import copy

from undo.compute import percent_of_oracle
from undo.errors import UserError
from undo.models import build_like, load_model
from undo.noise import shrink_and_perturb
from undo.objectives import Distillation
from undo.selection import resolve
from undo.stages.common import evaluator, fit, mixture, save, summarize
from undo.stopping import retain_recovered

ROLES = {"full": "distilled", "undo": "undo", "match": "matched"}


def run(exp, rundir, tracker, params: dict) -> dict:
    """params: kind (full | undo | match), teacher (run ref, e.g. unlearn/selected:maxent), student (random |
    run ref; match only), alpha, beta (undo), seed, mix, batch_size, optim, eval_every, tolerance (stop once
    the student's retain metric is within it of the teacher's; absent: fixed number of steps)."""
    kind = params["kind"]
    if kind not in ROLES:
        raise UserError(f"unknown distillation kind {kind!r}: choose one of {sorted(ROLES)}")
    seed = params.get("seed", 0)
    teacher_ref = resolve(exp, params["teacher"])
    teacher = load_model(exp.finished(teacher_ref) / "model")
    teacher_summary = exp.summary(teacher_ref)
    if kind == "undo":
        student = shrink_and_perturb(copy.deepcopy(teacher), params["alpha"], params["beta"], seed)
    elif params.get("student", "random") == "random":
        student = build_like(teacher, seed)
    else:
        student = load_model(exp.finished(params["student"]) / "model")
    if student.config.vocab_size != teacher.config.vocab_size:
        raise UserError(
            f"teacher {teacher_ref} has a vocabulary of {teacher.config.vocab_size} tokens but the "
            f"student has {student.config.vocab_size}: distill between models of one tokenizer"
        )
    student_init = "noised-teacher" if kind == "undo" else params.get("student", "random")
    rundir.record_inputs(teacher=teacher_ref, student=student_init)

    retain = exp.setting.retain
    stop = None
    if params.get("tolerance") is not None:
        stop = retain_recovered(retain, teacher_summary["metrics"][retain.name], params["tolerance"])
    data = mixture(exp, params["mix"], params["batch_size"], seed)
    # The stop rule needs the retain metric only; every metric is measured once at the end.
    result = fit(
        exp,
        tracker,
        student,
        Distillation(teacher),
        {"train": data},
        params,
        stop=stop,
        evaluate=evaluator(exp, [retain.name]),
        desc=f"distill/{rundir.final.name}",
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
        alpha=params.get("alpha"),
        beta=params.get("beta"),
        seed=seed,
        teacher_metrics=teacher_summary["metrics"],
        compute_pct=percent_of_oracle(exp, result.flops),
    )
