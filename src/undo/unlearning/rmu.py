"""Representation misdirection (RMU): scramble the residual stream on forget text, keep it on retain text.

The steered point is the residual stream at the *output* of decoder layer `layer` (0-based), read with a forward
hook. Only the MLP down-projections of `trainable_layers` (all at or below `layer`, so each one receives
gradient) are trained.
"""

from __future__ import annotations

import copy

import torch

from undo.errors import UserError
from undo.model import losses
from undo.params import Float, Int, Schema
from undo.unlearning.joint import Unlearning, decoder_layers
from undo.unlearning.registry import register


class LayerOutput:
    """Captures the output hidden states of one decoder layer at every forward."""

    def __init__(self, layer_module):
        self.value = None
        self._handle = layer_module.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):
        self.value = output[0] if isinstance(output, tuple) else output

    def remove(self):
        self._handle.remove()


@register("rmu")
class RMU(Unlearning):
    """L = forget_weight * MSE(h_l(forget), c * u) + retain_weight * MSE(h_l(retain), h_l^frozen(retain)) (the WMDP
    grids make the two weights convex)."""

    class Args(Schema):
        layer: Int = 2  # steered at its output
        trainable_layers: list[Int] | None = None  # default: the steered layer alone
        steering_coef: Float = 6.5
        retain_weight: Float = 1.0
        forget_weight: Float = 1.0

    def __init__(self, model, args: Args, seed: int = 0):
        layer, retain_weight, forget_weight = args.layer, args.retain_weight, args.forget_weight
        n_layers = len(decoder_layers(model))
        trainable_layers = list(args.trainable_layers if args.trainable_layers is not None else [layer])
        for index in [layer, *trainable_layers]:
            if not 0 <= index < n_layers:
                raise UserError(f"RMU layer {index} is outside the model, whose layers are 0..{n_layers - 1}")
        if any(index > layer for index in trainable_layers):
            raise UserError(f"RMU trainable layers {trainable_layers} must be at or below the steered layer {layer}")
        self.layer = layer
        self.trainable_layers = trainable_layers
        self.retain_weight = retain_weight
        self.forget_weight = forget_weight
        generator = torch.Generator().manual_seed(seed)
        direction = torch.rand(model.config.hidden_size, generator=generator)
        self.target = args.steering_coef * direction / direction.norm()
        self._capture = LayerOutput(decoder_layers(model)[layer])
        if retain_weight > 0:
            self.frozen = copy.deepcopy(model)
            self.frozen_streams = ("retain",)
            self._frozen_capture = LayerOutput(decoder_layers(self.frozen)[layer])

    def trainable(self, model) -> list[torch.nn.Parameter]:
        return [decoder_layers(model)[i].mlp.down_proj.weight for i in self.trainable_layers]

    def loss(self, out, batch):
        forget, retain = batch["forget"], batch["retain"]
        hidden = out.split(self._capture.value)
        target = self.target.to(hidden["forget"].device).expand_as(hidden["forget"])
        forget_loss = losses.masked_mse(hidden["forget"], target, forget["loss_mask"])
        logs = {"forget_mse": forget_loss.item()}
        loss = self.forget_weight * forget_loss
        if self.retain_weight > 0:
            with torch.no_grad():
                self.frozen.get_decoder()(input_ids=retain["input_ids"])  # the frozen copy is never wrapped
            retain_loss = losses.masked_mse(hidden["retain"], self._frozen_capture.value, retain["loss_mask"])
            loss = loss + self.retain_weight * retain_loss
            logs["retain_mse"] = retain_loss.item()
        return loss, logs

    def close(self):
        self._capture.remove()
        if self.retain_weight > 0:
            self._frozen_capture.remove()
