"""Stop rules for distillation: stop once the student has recovered the teacher's retain performance."""

from __future__ import annotations

from collections.abc import Callable


def retain_recovered(
    metric: str, teacher_value: float, higher_is_better: bool, tolerance: float = 0.05
) -> Callable[[dict], bool]:
    """CE (lower is better): (student - teacher) / teacher < tolerance, as the paper's language rule.
    Accuracy (higher is better): student - teacher > -tolerance, as the paper's arithmetic rule."""

    def stop(metrics: dict) -> bool:
        value = metrics[metric]
        if higher_is_better:
            return value - teacher_value > -tolerance
        return (value - teacher_value) / teacher_value < tolerance

    return stop
