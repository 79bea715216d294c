"""Evaluation tasks: each turns a model into named metrics, registered by kind and declared by the settings.

Kinds: "ce" (validation cross-entropy on packed blocks), "arithmetic" (accuracy of greedy answers),
"multiple_choice" (lm-evaluation-harness accuracy);
a setting's aggregate metrics (e.g. the mean accuracy over + and -) are computed from its tasks' metrics.
"""

from __future__ import annotations

from undo.errors import UserError
from undo.metrics import Metric


class Task:
    """Produces `metrics` from a model; `evaluate` runs on every process and returns the reduced values."""

    kind = ""  # "loglikelihood" or "generative" (and "multiple_choice")

    @property
    def metrics(self) -> tuple[Metric, ...]:
        raise NotImplementedError

    def evaluate(self, model, exp, names: set[str] | None = None) -> dict[str, float]:
        """The task's metrics (only `names` when given, where the task can skip work)."""
        raise NotImplementedError


def make_task(kind: str, **args) -> Task:
    from undo.evaluate.arithmetic import ArithmeticAccuracy
    from undo.evaluate.ce import DomainCE
    from undo.evaluate.multiple_choice import MultipleChoice

    kinds = {"ce": DomainCE, "arithmetic": ArithmeticAccuracy, "multiple_choice": MultipleChoice}
    if kind not in kinds:
        raise UserError(f"unknown evaluation task {kind!r}: choose one of {sorted(kinds)}")
    return kinds[kind](**args)


def requested(setting, names: list[str] | None = None) -> set[str]:
    """The metrics `evaluate` gives for `names`: the setting's all, or the named ones and what they are the mean
    of."""
    wanted = set(setting.metrics) if names is None else set(names)
    for name in list(wanted):
        wanted |= set(setting.metric(name).mean_of)
    return wanted


def evaluate(model, exp, names: list[str] | None = None) -> dict[str, float]:
    """The setting's metrics (all, or the named ones and what they are the mean of) for one model."""
    setting = exp.setting
    wanted = requested(setting, names)
    values: dict[str, float] = {}
    for task in setting.tasks:
        needed = {m.name for m in task.metrics} & wanted
        if needed:
            values.update(task.evaluate(model, exp, needed))
    for metric in setting.metrics.values():
        if metric.mean_of and metric.name in wanted:
            values[metric.name] = sum(values[part] for part in metric.mean_of) / len(metric.mean_of)
    return values
