"""RepNoise, as an add-on to another method: make forget representations look like Gaussian noise and keep
every layer's logit-lens prediction of forget text bad."""

from __future__ import annotations

import torch
from accelerate.utils import extract_model_from_parallel

from undo.model import losses
from undo.model.heads import head
from undo.params import Float, Int, Schema
from undo.training.objectives import Objective
from undo.unlearning.joint import decoder_layers, joint_forward


class WithRepNoise(Objective):
    """L = base loss + beta * MMD(forget MLP activations, N(0, I)) - alpha * log(logit-lens forget CE + 1).

    The base method and these terms read one joint forward (with hidden states and every MLP's output hooked);
    the MLP hooks are registered once, at construction, and removed by `close`."""

    streams = ("forget", "retain")

    class Args(Schema):
        alpha: Float  # weight of the gradient-ascent term on forget data (logit lens)
        beta: Float  # weight of the noise-matching (MMD) term
        max_rows: Int = 256  # forget positions per layer in the MMD

    def __init__(self, base: Objective, model, args: Args, seed: int = 0):
        self.base = base
        self.frozen, self.frozen_streams = base.frozen, base.frozen_streams
        self.alpha, self.beta, self.max_rows = args.alpha, args.beta, args.max_rows
        self.generator = torch.Generator().manual_seed(seed)
        self._activations: list[torch.Tensor] = []
        self._capturing = False
        self._handles = [layer.mlp.register_forward_hook(self._hook) for layer in decoder_layers(model)]

    def _hook(self, module, inputs, output):
        if self._capturing:
            self._activations.append(output)

    def trainable(self, model):
        return self.base.trainable(model)

    def state_dict(self) -> dict:
        """The generator of the MMD's row samples and noise: a resumed run draws on where it stopped."""
        return {"generator": self.generator.get_state(), "base": self.base.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.base.load_state_dict(state["base"])

    def __call__(self, model, batch):
        self._activations = []
        self._capturing = True
        try:
            out = joint_forward(model, batch, self.streams, self.base.chunk_rows)
        finally:
            self._capturing = False
        loss, logs = self.base.loss(out, batch)
        forget = batch["forget"]
        activations = [out.split(a)["forget"] for a in self._activations]
        mmd = torch.stack([self._mmd_to_noise(a, forget["loss_mask"]) for a in activations]).mean()
        lens_ce = self._logit_lens_ce(model, out, forget)
        loss = loss + self.beta * mmd - self.alpha * torch.log(lens_ce + 1)
        return loss, {**logs, "mmd": mmd.item(), "lens_ce": lens_ce.item()}

    def _mmd_to_noise(self, activations: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        rows = activations[mask]
        keep = torch.randperm(len(rows), generator=self.generator)[: self.max_rows].to(rows.device)
        rows = rows[keep]
        noise = torch.randn(rows.shape, generator=self.generator).to(rows.device, rows.dtype)
        return losses.gaussian_mmd(rows, noise)

    def _logit_lens_ce(self, model, out, forget) -> torch.Tensor:
        """Mean forget CE of every layer's residual stream read through the final norm and output layer (their
        weights, not another forward of the wrapped model)."""
        norm = extract_model_from_parallel(model).get_decoder().norm
        per_layer = [
            losses.cross_entropy(
                head(model, norm(hidden), self.base.chunk_rows), forget["input_ids"], forget["loss_mask"]
            )
            for hidden in out.hidden_states("forget")[1:-1]
        ]
        per_layer.append(losses.cross_entropy(out.logits("forget"), forget["input_ids"], forget["loss_mask"]))
        return torch.stack(per_layer).mean()

    def close(self):
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self.base.close()
