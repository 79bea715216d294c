"""Objectives shared by several stages: plain language modelling and distillation on output logits.

Every objective that reads output logits takes `chunk_rows`: with it, the losses compute the logits from the final
hidden states a chunk of positions at a time (`losses.Head`), the same numbers in far less memory at a large
vocabulary; without it, all at once.
"""

from __future__ import annotations

import torch
from torch import nn

from undo.model import losses
from undo.model.heads import predictions


class Objective:
    """A loss over a step's batches: `{stream name: {"input_ids", "loss_mask"}}` -> (loss, logs).

    `frozen` is a forward-only model (a teacher or a frozen reference copy) that reads the streams named in
    `frozen_streams`; it is moved to the training device and counted at 2N FLOPs per token it reads.
    """

    streams: tuple[str, ...] = ("train",)  # the batch streams it reads
    frozen: nn.Module | None = None
    frozen_streams: tuple[str, ...] = ()

    def trainable(self, model: nn.Module) -> list[nn.Parameter] | None:
        """The parameters to train (None: all of them)."""
        return None

    def __call__(self, model: nn.Module, batch: dict[str, dict[str, torch.Tensor]]) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """The state of whatever the objective draws at random, so a resumed run draws what it would have drawn."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Put back what `state_dict` saved."""

    def close(self) -> None:
        """Release hooks or other resources held on the model."""


class LanguageModeling(Objective):
    """Next-token cross-entropy on the "train" stream (pretraining and relearning attacks)."""

    def __init__(self, chunk_rows: int | None = None):
        self.chunk_rows = chunk_rows

    def __call__(self, model, batch):
        data = batch["train"]
        logits = predictions(model, data["input_ids"], self.chunk_rows)
        return losses.cross_entropy(logits, data["input_ids"], data["loss_mask"]), {}


class Distillation(Objective):
    """Forward KL from a frozen teacher's output distribution (or a `view` of it: losses.MaskTokens,
    losses.TopKTail) to the student's, on unlabelled text: every position counts, since an answer-only mask would
    be a label."""

    frozen_streams = ("train",)

    def __init__(self, teacher, chunk_rows: int | None = None, view=None):
        self.frozen = teacher
        self.chunk_rows = chunk_rows
        self.view = view

    def __call__(self, model, batch):
        data = batch["train"]
        with torch.no_grad():
            teacher = predictions(self.frozen, data["input_ids"], self.chunk_rows)
        student = predictions(model, data["input_ids"], self.chunk_rows)
        return losses.forward_kl(teacher, student, torch.ones_like(data["loss_mask"]), self.view), {}
