"""Faster ways to compute the same function on a GPU, each switchable: Gemma-2's soft-capped attention through
PyTorch's flex_attention (a fused kernel: eager attention writes out every score), `torch.compile` of the model,
and fused AdamW. `FastPaths.for_device` gives the paths a run takes: none on a CPU, so CPU numbers stay exactly
as they are; on a GPU, those `benchmarks/gpu_check.py` measured faster (docs/scales.md, "Checked on a GPU").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from undo.model.softcap import attention_implementation

FLEX = "flex_attention"


@dataclass(frozen=True)
class FastPaths:
    """Which fast paths a run takes: the attention kernel, whether the model is compiled, fused AdamW."""

    attention: Literal["eager", "flex"] = "eager"
    compile: bool = False
    fused_optimizer: bool = False

    @classmethod
    def for_device(cls, device: torch.device) -> FastPaths:
        """The defaults: on a GPU, the paths measured faster there; on anything else, none."""
        return GPU_DEFAULT if device.type == "cuda" else cls()


# What a GPU takes by default: none until benchmarks/gpu_check.py has measured a path faster on one (docs/scales.md).
GPU_DEFAULT = FastPaths()


def use_attention(model: nn.Module, attention: str) -> None:
    """Switch a loaded model's attention in place: "eager" (this package's soft-capped eager attention) or "flex"."""
    if attention not in ("eager", "flex"):
        raise ValueError(f"unknown attention path {attention!r}: choose eager or flex")
    model.set_attn_implementation(FLEX if attention == "flex" else attention_implementation())


def accelerate(model: nn.Module, paths: FastPaths) -> nn.Module:
    """The model on `paths`: its attention switched and, with `compile`, its forward compiled in place (the module,
    its parameters and its saved form stay the same)."""
    if paths.attention != "eager":
        use_attention(model, paths.attention)
    if paths.compile:
        model.compile()
    return model
