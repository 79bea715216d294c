"""Arithmetic accuracy: greedy answers to the held-out evaluation problems, one metric per operation and
format (`add_eq`, `add_word`, ...); correct when the first piece of the answer is the number, within 1e-6."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from undo.data import arithmetic
from undo.evaluate.generation import greedy_continuations, parse_number, prompt_ids
from undo.evaluate.metrics import Metric
from undo.evaluate.tasks import Task

if TYPE_CHECKING:  # annotations only: the experiment sits above this layer
    from undo.experiment import Experiment

MAX_NEW_TOKENS = 4


def is_correct(text: str, answer: float, stop: str | None = None) -> bool:
    value = parse_number(text, stop)
    return value is not None and abs(value - answer) < 1e-6


class ArithmeticAccuracy(Task):
    """`<op>_<format>` accuracy for each operation and format (equation, word problem)."""

    def __init__(self, ops: tuple[str, ...]):
        for op in ops:
            arithmetic.operands(op, 0, 0)  # a clear error for an unknown operation
        self.ops = tuple(ops)

    @property
    def metrics(self) -> tuple[Metric, ...]:
        names = (arithmetic.metric_name(op, form) for op in self.ops for form in arithmetic.FORMATS)
        return tuple(Metric(name, higher_is_better=True) for name in names)

    def evaluate(self, model, exp: Experiment, names=None, held_out=None) -> dict[str, float]:
        """Each process answers every world-th item; correct counts are summed over processes."""
        n = exp.scale.eval_items or arithmetic.EVAL_ITEMS
        items = [i for i in arithmetic.evaluation_items(list(self.ops), n) if names is None or i.metric in names]
        if held_out is not None:
            items = [i for i in items if held_out.part(i.fact) == "held_out"]
        metrics = sorted({i.metric for i in items})
        accelerator, tokenizer = exp.accelerator, exp.tokenizer
        mine = items[accelerator.process_index :: accelerator.num_processes]
        prompts = [prompt_ids(tokenizer, i.qa.prompt) for i in mine]
        was_training = model.training
        model.eval()
        texts = greedy_continuations(
            model,
            prompts,
            tokenizer,
            max_new_tokens=MAX_NEW_TOKENS,
            batch_size=exp.scale.eval_batch_size,
            device=accelerator.device,
        )
        model.train(was_training)
        counts = torch.zeros(len(metrics), 2, dtype=torch.float64, device=accelerator.device)
        for item, text in zip(mine, texts, strict=True):
            row = metrics.index(item.metric)
            counts[row, 0] += is_correct(text, item.value, tokenizer.eos_token)
            counts[row, 1] += 1
        counts = accelerator.reduce(counts, reduction="sum")
        return {m: float(counts[i, 0] / counts[i, 1].clamp_min(1)) for i, m in enumerate(metrics)}
