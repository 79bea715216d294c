"""Maximum entropy: push the forget-token predictions towards the uniform distribution."""

from __future__ import annotations

import copy
from typing import Literal

import torch

from undo.model import losses
from undo.model.heads import predictions
from undo.params import Float, Schema
from undo.unlearning.joint import Unlearning
from undo.unlearning.registry import register


@register("maxent")
class MaxEnt(Unlearning):
    """L = forget_weight * KL(U || p) on forget tokens + retain_weight * retain term.

    retain="ce": CE on retain text (language, arithmetic); retain="kl": KL(p_frozen || p) against a frozen
    copy of the starting model (the WMDP form)."""

    class Args(Schema):
        forget_weight: Float = 1.0
        retain_weight: Float = 1.0
        retain: Literal["ce", "kl"] = "ce"

    def __init__(self, model, args: Args, seed: int = 0):
        self.forget_weight = args.forget_weight
        self.retain_weight = args.retain_weight
        self.retain = args.retain
        if self.retain == "kl":
            self.frozen = copy.deepcopy(model)
            self.frozen_streams = ("retain",)

    def loss(self, out, batch):
        forget, retain = batch["forget"], batch["retain"]
        forget_kl = losses.kl_uniform(out.logits("forget"), forget["loss_mask"])
        logits = out.logits("retain")
        if self.retain == "ce":
            retain_loss = losses.cross_entropy(logits, retain["input_ids"], retain["loss_mask"])
        else:
            with torch.no_grad():
                reference = predictions(self.frozen, retain["input_ids"], self.chunk_rows)
            retain_loss = losses.forward_kl(reference, logits, retain["loss_mask"])
        loss = self.forget_weight * forget_kl + self.retain_weight * retain_loss
        return loss, {"forget_kl_uniform": forget_kl.item(), f"retain_{self.retain}": retain_loss.item()}
