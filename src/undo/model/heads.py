"""The model's next-token logits computed outside its forward: from the final hidden states and the output head,
with Gemma-2's logit soft-cap (`undo.model.softcap`: the same function as the model's own, faster on a CPU), all
at once or, with `chunk_rows`, a chunk of positions at a time inside the losses (`losses.Head`): the same numbers
in far less memory at a large vocabulary.
"""

from __future__ import annotations

import torch
from accelerate.utils import extract_model_from_parallel

from undo.model import losses


def head(model, hidden: torch.Tensor, chunk_rows: int | None) -> losses.Head:
    """`hidden` (the decoder's final, normed states) with the model's output-head weight and logit soft-cap."""
    inner = extract_model_from_parallel(model)
    cap = getattr(inner.config, "final_logit_softcapping", None)
    return losses.Head(hidden, inner.get_output_embeddings().weight, cap, chunk_rows)


def predictions(model, input_ids: torch.Tensor, chunk_rows: int | None = None) -> losses.Logits:
    """The model's next-token logits; with `chunk_rows`, its final hidden states and output head instead. The
    forward goes through the possibly data-parallel wrapper and skips the head: the logits are computed here, soft-cap
    included (`undo.model.softcap`: the same function as the model's own, faster on a CPU)."""
    out = model(input_ids=input_ids, logits_to_keep=1, output_hidden_states=True)
    logits = head(model, out.hidden_states[-1], chunk_rows)
    return logits if chunk_rows else logits.logits()
