"""Gradient difference: ascend the forget CE, descend the retain CE."""

from __future__ import annotations

from undo.model import losses
from undo.params import Float, Schema
from undo.unlearning.joint import Unlearning
from undo.unlearning.registry import register


@register("graddiff")
class GradDiff(Unlearning):
    """L = -forget_weight * CE(forget) + retain_weight * CE(retain).

    The paper's language/arithmetic form is (1, lambda); the WMDP form is the convex (1 - a, a)."""

    class Args(Schema):
        forget_weight: Float = 1.0
        retain_weight: Float = 1.0

    def __init__(self, model, args: Args, seed: int = 0):
        self.forget_weight = args.forget_weight
        self.retain_weight = args.retain_weight

    def loss(self, out, batch):
        forget, retain = batch["forget"], batch["retain"]
        forget_ce = losses.cross_entropy(out.logits("forget"), forget["input_ids"], forget["loss_mask"])
        retain_ce = losses.cross_entropy(out.logits("retain"), retain["input_ids"], retain["loss_mask"])
        loss = -self.forget_weight * forget_ce + self.retain_weight * retain_ce
        return loss, {"forget_ce": forget_ce.item(), "retain_ce": retain_ce.item()}
