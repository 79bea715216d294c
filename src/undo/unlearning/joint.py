"""One forward of the trained model over the forget and retain batches together.

Data-parallel training (DDP) allows one forward of the wrapped model per backward, and one larger batch is faster
than two; each method reads its streams' outputs (and any hooked activations) from that one pass.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch

from undo.model import losses
from undo.model.heads import head
from undo.training.objectives import Objective


def decoder_layers(model):
    return model.get_decoder().layers


@dataclass
class JointOutput:
    """A model output over several streams stacked along the batch dimension, read back per stream."""

    names: tuple[str, ...]
    sizes: list[int]
    output: Any
    head: losses.Head  # the joint batch's output head: the logits are computed from it (in chunks with chunk_rows)

    def split(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        """Any tensor whose first dimension is the joint batch (logits, hidden states, hooked activations)."""
        return dict(zip(self.names, rows.split(self.sizes), strict=True))

    def logits(self, name: str) -> losses.Logits:
        stream = replace(self.head, hidden=self.split(self.head.hidden)[name])
        return stream if stream.chunk_rows else stream.logits()

    def hidden_states(self, name: str) -> tuple[torch.Tensor, ...]:
        return tuple(self.split(h)[name] for h in self.output.hidden_states)


def joint_forward(model, batch: dict, names: tuple[str, ...], chunk_rows: int | None = None) -> JointOutput:
    """The model's own head is skipped (see undo.model.heads.predictions); with `chunk_rows`, `logits` gives
    `losses.Head`s."""
    ids = torch.cat([batch[name]["input_ids"] for name in names])
    sizes = [len(batch[name]["input_ids"]) for name in names]
    output = model(input_ids=ids, logits_to_keep=1, output_hidden_states=True)
    return JointOutput(tuple(names), sizes, output, head(model, output.hidden_states[-1], chunk_rows))


class Unlearning(Objective):
    """A method's loss from one joint forward over its forget and retain batches."""

    streams = ("forget", "retain")
    chunk_rows: int | None = None  # set by make_objective: logits from hidden states, this many positions at a time

    def __call__(self, model, batch):
        return self.loss(joint_forward(model, batch, self.streams, self.chunk_rows), batch)

    def loss(self, out: JointOutput, batch: dict) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError
