"""Objectives shared by several stages: plain language modelling and distillation on output logits.

Every objective that reads output logits takes `chunk_rows`: with it, the losses compute the logits from the final
hidden states a chunk of positions at a time (`losses.Head`), the same numbers in far less memory at a large
vocabulary; without it, all at once.
"""

from __future__ import annotations

import torch
from accelerate.utils import extract_model_from_parallel

from undo import losses
from undo.train import Objective


def head(model, hidden: torch.Tensor, chunk_rows: int | None) -> losses.Head:
    """`hidden` (the decoder's final, normed states) with the model's output-head weight and logit soft-cap."""
    inner = extract_model_from_parallel(model)
    cap = getattr(inner.config, "final_logit_softcapping", None)
    return losses.Head(hidden, inner.get_output_embeddings().weight, cap, chunk_rows)


def predictions(model, input_ids: torch.Tensor, chunk_rows: int | None = None) -> losses.Logits:
    """The model's next-token logits; with `chunk_rows`, its final hidden states and output head instead. The
    forward goes through the possibly data-parallel wrapper and skips the head: the logits are computed here, soft-cap
    included (`undo.softcap`: the same function as the model's own, faster on a CPU)."""
    out = model(input_ids=input_ids, logits_to_keep=1, output_hidden_states=True)
    logits = head(model, out.hidden_states[-1], chunk_rows)
    return logits if chunk_rows else logits.logits()


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
