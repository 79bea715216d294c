"""Metrics as a setting declares them: a name, the direction that is better, and how two values compare.

Selection, stop rules, the attacker's best learning rate and robustness read these declarations; nothing
downstream assumes cross-entropy or lower-is-better.
"""

from __future__ import annotations

from dataclasses import dataclass

# The paper's tolerance on a retain metric: a teacher is selected, and a student stops distilling, within 5% of its
# reference (relative for CE, absolute for accuracy: as the metric compares values).
RETAIN_TOLERANCE = 0.05


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    relative: bool = False  # compare changes relative to the reference value (CE) or as differences (accuracy)
    mean_of: tuple[str, ...] = ()  # an aggregate: the mean of these metrics

    def degradation(self, value: float, reference: float) -> float:
        """How much worse `value` is than `reference` (negative = better): relative or absolute."""
        change = (reference - value) if self.higher_is_better else (value - reference)
        return change / abs(reference) if self.relative else change

    def better(self, a: float, b: float) -> bool:
        """Whether a is strictly better than b."""
        return a > b if self.higher_is_better else a < b

    def describe(self) -> dict:
        return {"higher_is_better": self.higher_is_better, "relative": self.relative, "mean_of": list(self.mean_of)}
