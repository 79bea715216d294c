"""Stop rules for distillation: stop once the student has recovered the teacher's retain performance."""

from __future__ import annotations

from collections.abc import Callable

from undo.evaluate.metrics import RETAIN_TOLERANCE, Metric


def retain_recovered(
    metric: Metric, teacher_value: float, tolerance: float = RETAIN_TOLERANCE
) -> Callable[[dict], bool]:
    """Stop once the student is less than `tolerance` worse than the teacher, as the metric compares values:
    CE relatively, (student - teacher) / teacher < tolerance (the paper's language rule); accuracy absolutely,
    student - teacher > -tolerance (the paper's arithmetic rule)."""
    return lambda metrics: metric.degradation(metrics[metric.name], teacher_value) < tolerance
