"""The quantization attack: the decoder's linear weights rounded to 8 or 4 bits, read with no training.

Low-bit rounding has been reported to bring back knowledge that unlearning only nudged below the surface (the
rounding undoes small weight changes). Two methods: symmetric round-to-nearest per group of input weights,
written here, and torchao's weight-only integer quantization (its own kernels and tensor subclass). Embeddings and
the (tied) output head stay in full precision, as weight-only LLM quantization usually leaves them.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from undo.errors import UserError
from undo.params import Count, Schema


class Quantize(Schema):
    bits: Literal[8, 4] = 4
    method: Literal["rtn", "torchao"] = "rtn"
    group_size: Count = 32  # input weights sharing one scale


def decoder_linears(model) -> list[nn.Linear]:
    head = model.get_output_embeddings()
    return [m for m in model.modules() if isinstance(m, nn.Linear) and m is not head]


def grid(weight: torch.Tensor, bits: int, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(integer codes, their scales) of symmetric round-to-nearest: each group of `group_size` input weights
    shares the scale max|w| / (2^(bits-1) - 1)."""
    top = 2 ** (bits - 1) - 1
    groups = weight.detach().float().reshape(weight.shape[0], -1, group_size)
    scale = (groups.abs().amax(-1, keepdim=True) / top).clamp_min(torch.finfo(torch.float32).tiny)
    return torch.round(groups / scale).clamp(-top - 1, top), scale


@torch.no_grad()
def quantize(model, config: Quantize):
    """The model with its decoder's linear weights quantized in place."""
    linears = decoder_linears(model)
    if any(m.in_features % config.group_size for m in linears):
        raise UserError(f"quantize.group_size {config.group_size} does not divide every linear layer's input width")
    if config.method == "torchao":
        from torchao.quantization import IntxWeightOnlyConfig, quantize_  # heavy: only this attack needs torchao
        from torchao.quantization.granularity import PerGroup

        chosen = {id(m) for m in linears}
        dtype = torch.int8 if config.bits == 8 else torch.int4
        scheme = IntxWeightOnlyConfig(weight_dtype=dtype, granularity=PerGroup(config.group_size))
        quantize_(model, scheme, filter_fn=lambda module, _name: id(module) in chosen)
        return model
    for linear in linears:
        codes, scale = grid(linear.weight, config.bits, config.group_size)
        linear.weight.copy_((codes * scale).reshape(linear.weight.shape))
    return model
