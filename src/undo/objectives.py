"""Objectives shared by several stages: plain language modelling and distillation on output logits."""

from __future__ import annotations

import torch
from accelerate.utils import extract_model_from_parallel

from undo import losses
from undo.train import Objective


class LanguageModeling(Objective):
    """Next-token cross-entropy on the "train" stream (pretraining and relearning attacks)."""

    def __call__(self, model, batch):
        data = batch["train"]
        logits = model(input_ids=data["input_ids"]).logits
        return losses.cross_entropy(logits, data["input_ids"], data["loss_mask"]), {}


def final_hidden(model, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float | None]:
    """The decoder's final (normed) hidden states, the output-head weights and the logit soft-cap: the logits,
    left uncomputed. The forward goes through the (possibly data-parallel) wrapper, skipping its output head."""
    out = model(input_ids=input_ids, logits_to_keep=1, output_hidden_states=True)
    inner = extract_model_from_parallel(model)
    return (
        out.hidden_states[-1],
        inner.get_output_embeddings().weight,
        getattr(inner.config, "final_logit_softcapping", None),
    )


class Distillation(Objective):
    """Forward KL from a frozen teacher's output distribution to the student's, on unlabelled text: every
    position counts, since an answer-only mask would be a label. With `chunk_rows`, the KL is computed from
    hidden states a chunk of positions at a time (losses.chunked_forward_kl): the same loss in far less memory
    at a large vocabulary."""

    frozen_streams = ("train",)

    def __init__(self, teacher, chunk_rows: int | None = None):
        self.frozen = teacher
        self.chunk_rows = chunk_rows

    def __call__(self, model, batch):
        data = batch["train"]
        every_position = torch.ones_like(data["loss_mask"])
        if self.chunk_rows:
            with torch.no_grad():
                teacher_hidden, teacher_head, teacher_cap = final_hidden(self.frozen, data["input_ids"])
            student_hidden, student_head, student_cap = final_hidden(model, data["input_ids"])
            loss = losses.chunked_forward_kl(
                student_hidden,
                teacher_hidden,
                student_head,
                teacher_head,
                every_position,
                caps=(student_cap, teacher_cap),
                chunk_rows=self.chunk_rows,
            )
            return loss, {}
        with torch.no_grad():
            teacher_logits = self.frozen(input_ids=data["input_ids"]).logits
        student_logits = model(input_ids=data["input_ids"]).logits
        return losses.forward_kl(teacher_logits, student_logits, every_position), {}
