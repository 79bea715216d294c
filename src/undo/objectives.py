"""Objectives shared by several stages: plain language modelling and distillation on output logits."""

from __future__ import annotations

import torch

from undo import losses
from undo.train import Objective


class LanguageModeling(Objective):
    """Next-token cross-entropy on the "train" stream (pretraining and relearning attacks)."""

    def __call__(self, model, batch):
        data = batch["train"]
        logits = model(input_ids=data["input_ids"]).logits
        return losses.cross_entropy(logits, data["input_ids"], data["loss_mask"]), {}


class Distillation(Objective):
    """Forward KL from a frozen teacher's output distribution to the student's, on unlabelled text: every
    position counts, since an answer-only mask would be a label."""

    frozen_streams = ("train",)

    def __init__(self, teacher):
        self.frozen = teacher

    def __call__(self, model, batch):
        data = batch["train"]
        with torch.no_grad():
            teacher_logits = self.frozen(input_ids=data["input_ids"]).logits
        student_logits = model(input_ids=data["input_ids"]).logits
        every_position = torch.ones_like(data["loss_mask"])
        return losses.forward_kl(teacher_logits, student_logits, every_position), {}
