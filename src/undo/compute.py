"""Compute accounting: a run's FLOPs as a percentage of the data-filtered oracle's pretraining FLOPs.

What is counted (by the training loop, undo.train): 6N FLOPs per token through the trained model (forward and
backward; SAM's second pass counted again) and 2N per token through a forward-only model (a distillation
teacher, a frozen reference copy), N the models' unique parameters; evaluations are not counted. The
denominator is the oracle's pretraining, counted the same way: 6N per token of its one pass over its data.
"""

from __future__ import annotations

from undo.experiment import ORACLE


def training_flops(n_params: int, tokens: int, frozen_params: int = 0, frozen_tokens: int = 0) -> float:
    """6N per token through a trained model (forward + backward), 2N per token through a forward-only one."""
    return 6.0 * n_params * tokens + 2.0 * frozen_params * frozen_tokens


def percent_of_oracle(exp, flops: float) -> float | None:
    """None when the oracle has not been pretrained in this output tree."""
    if ORACLE not in exp.finished_runs("pretrain"):
        return None
    return 100.0 * flops / exp.summary(ORACLE)["flops"]
