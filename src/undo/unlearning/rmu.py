"""Representation misdirection (RMU): scramble the residual stream on forget text, keep it on retain text.

The steered point is the residual stream at the *output* of decoder layer `layer` (0-based), read with a forward
hook. Only the MLP down-projections of `trainable_layers` (all at or below `layer`, so each one receives
gradient) are trained.
"""

from __future__ import annotations

import copy

import torch
from accelerate.utils import extract_model_from_parallel

from undo import losses
from undo.errors import UserError
from undo.train import Objective


def decoder_layers(model):
    return model.get_decoder().layers


class LayerOutput:
    """Captures the output hidden states of one decoder layer at every forward."""

    def __init__(self, layer_module):
        self.value = None
        self._handle = layer_module.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):
        self.value = output[0] if isinstance(output, tuple) else output

    def remove(self):
        self._handle.remove()


class RMU(Objective):
    """L = MSE(h_l(forget), c * u) + retain_weight * MSE(h_l(retain), h_l^frozen(retain))."""

    streams = ("forget", "retain")

    def __init__(
        self,
        model,
        seed: int = 0,
        layer: int = 2,
        trainable_layers: list[int] | None = None,
        steering_coef: float = 6.5,
        retain_weight: float = 1.0,
    ):
        n_layers = len(decoder_layers(model))
        trainable_layers = list(trainable_layers if trainable_layers is not None else [layer])
        for index in [layer, *trainable_layers]:
            if not 0 <= index < n_layers:
                raise UserError(f"RMU layer {index} is outside the model, whose layers are 0..{n_layers - 1}")
        if any(index > layer for index in trainable_layers):
            raise UserError(f"RMU trainable layers {trainable_layers} must be at or below the steered layer {layer}")
        self.layer = layer
        self.trainable_layers = trainable_layers
        self.retain_weight = retain_weight
        generator = torch.Generator().manual_seed(seed)
        direction = torch.rand(model.config.hidden_size, generator=generator)
        self.target = steering_coef * direction / direction.norm()
        self._capture = LayerOutput(decoder_layers(model)[layer])
        if retain_weight > 0:
            self.frozen = copy.deepcopy(model)
            self.frozen_streams = ("retain",)
            self._frozen_capture = LayerOutput(decoder_layers(self.frozen)[layer])

    def trainable(self, model) -> list[torch.nn.Parameter]:
        return [decoder_layers(model)[i].mlp.down_proj.weight for i in self.trainable_layers]

    def _hidden(self, model, capture: LayerOutput, input_ids):
        """Run the decoder stack only (no output layer) and return the captured layer output."""
        extract_model_from_parallel(model).get_decoder()(input_ids=input_ids)
        return capture.value

    def __call__(self, model, batch):
        forget, retain = batch["forget"], batch["retain"]
        hidden = self._hidden(model, self._capture, forget["input_ids"])
        forget_loss = losses.masked_mse(hidden, self.target.to(hidden.device).expand_as(hidden), forget["loss_mask"])
        logs = {"forget_mse": forget_loss.item()}
        loss = forget_loss
        if self.retain_weight > 0:
            hidden = self._hidden(model, self._capture, retain["input_ids"])
            with torch.no_grad():
                reference = self._hidden(self.frozen, self._frozen_capture, retain["input_ids"])
            retain_loss = losses.masked_mse(hidden, reference, retain["loss_mask"])
            loss = loss + self.retain_weight * retain_loss
            logs["retain_mse"] = retain_loss.item()
        return loss, logs

    def close(self):
        self._capture.remove()
        if self.retain_weight > 0:
            self._frozen_capture.remove()
