"""One forward of the trained model over the forget and retain batches together.

Data-parallel training (DDP) allows one forward of the wrapped model per backward, and one larger batch is faster
than two; each method reads its streams' outputs (and any hooked activations) from that one pass.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import torch

from undo import losses
from undo.objectives import head
from undo.train import Objective


@dataclass
class JointOutput:
    """A model output over several streams stacked along the batch dimension, read back per stream."""

    names: tuple[str, ...]
    sizes: list[int]
    output: Any
    head: losses.Head | None = None  # the joint batch's output head, when the logits are computed in chunks

    def split(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        """Any tensor whose first dimension is the joint batch (logits, hidden states, hooked activations)."""
        return dict(zip(self.names, rows.split(self.sizes), strict=True))

    def logits(self, name: str) -> losses.Logits:
        if self.head is None:
            return self.split(self.output.logits)[name]
        return replace(self.head, hidden=self.split(self.head.hidden)[name])

    def hidden_states(self, name: str) -> tuple[torch.Tensor, ...]:
        return tuple(self.split(h)[name] for h in self.output.hidden_states)


def joint_forward(model, batch: dict, names: tuple[str, ...], chunk_rows: int | None = None, **options) -> JointOutput:
    """With `chunk_rows`, the output head is skipped and `logits` gives `losses.Head`s (see undo.objectives)."""
    ids = torch.cat([batch[name]["input_ids"] for name in names])
    sizes = [len(batch[name]["input_ids"]) for name in names]
    if chunk_rows:
        options = {**options, "logits_to_keep": 1, "output_hidden_states": True}
    output = model(input_ids=ids, **options)
    chunked = head(model, output.hidden_states[-1], chunk_rows) if chunk_rows else None
    return JointOutput(tuple(names), sizes, output, chunked)


class Unlearning(Objective):
    """A method's loss from one joint forward over its forget and retain batches."""

    streams = ("forget", "retain")
    # what that forward must return, e.g. {"logits_to_keep": 1} when only hooked activations are read
    forward_options: ClassVar[dict] = {}
    chunk_rows: int | None = None  # set by make_objective: logits from hidden states, this many positions at a time

    def __call__(self, model, batch):
        return self.loss(joint_forward(model, batch, self.streams, self.chunk_rows, **self.forward_options), batch)

    def loss(self, out: JointOutput, batch: dict) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError
