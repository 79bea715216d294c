"""Evaluation tasks: each turns a model into named metrics; the settings declare theirs (undo.evaluate.ce,
.arithmetic, .multiple_choice), and a setting's aggregate metrics (e.g. the mean accuracy over + and -) are
computed from its tasks' metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from undo.data.facts import FactSplit
from undo.errors import UserError
from undo.evaluate.metrics import Metric

if TYPE_CHECKING:  # annotations only: the experiment sits above this layer
    from undo.experiment import Experiment


class Task:
    """Produces `metrics` from a model; `evaluate` runs on every process and returns the reduced values."""

    @property
    def metrics(self) -> tuple[Metric, ...]:
        raise NotImplementedError

    def evaluate(
        self, model, exp: Experiment, names: set[str] | None = None, held_out: FactSplit | None = None
    ) -> dict[str, float]:
        """The task's metrics (only `names` when given, where the task can skip work); with `held_out`, scored on
        the held-out part of that split of its facts only."""
        raise NotImplementedError


def no_facts(task: Task, held_out: FactSplit | None) -> None:
    """A clear line where a held-out split is asked of a task whose items are not facts."""
    if held_out is not None:
        raise UserError(
            f"{type(task).__name__} has no facts to hold out: a held-out-facts attack needs arithmetic or quiz "
            "items (the language setting's attack and evaluation documents already differ)"
        )


def requested(setting, names: list[str] | None = None) -> set[str]:
    """The metrics `evaluate` gives for `names`: the setting's all, or the named ones and what they are the mean
    of."""
    wanted = set(setting.metrics) if names is None else set(names)
    for name in list(wanted):
        wanted |= set(setting.metric(name).mean_of)
    return wanted


def evaluate(
    model, exp: Experiment, names: list[str] | None = None, held_out: FactSplit | None = None
) -> dict[str, float]:
    """The setting's metrics (all, or the named ones and what they are the mean of) for one model; with
    `held_out`, on the held-out facts of that split only."""
    setting = exp.setting
    wanted = requested(setting, names)
    values: dict[str, float] = {}
    for task in setting.tasks:
        needed = {m.name for m in task.metrics} & wanted
        if needed:
            values.update(task.evaluate(model, exp, needed, held_out))
    for metric in setting.metrics.values():
        if metric.mean_of and metric.name in wanted:
            values[metric.name] = sum(values[part] for part in metric.mean_of) / len(metric.mean_of)
    return values
