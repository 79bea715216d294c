"""The LoRA attack: low-rank adapters trained through peft, merged back into a plain transformers model."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, Strict

from undo.params import Count, Schema

# Gemma-2's attention and MLP projections
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class Lora(Schema):
    """Adapters of rank `rank` (scaled by alpha / rank) on the `targets` projections of every layer."""

    rank: Count = 8
    alpha: Annotated[float, Strict(), Field(gt=0)] = 16.0
    targets: tuple[Annotated[str, Field(pattern=f"^({'|'.join(PROJECTIONS)})$")], ...] = PROJECTIONS


def with_lora(model, lora: Lora):
    """The model wrapped with fresh adapters; only they are trainable."""
    from peft import LoraConfig, get_peft_model  # heavy: only a LoRA attack needs peft

    config = LoraConfig(r=lora.rank, lora_alpha=lora.alpha, target_modules=list(lora.targets), lora_dropout=0.0)
    return get_peft_model(model, config)


def merged(model):
    """The adapters folded into the weights: the plain transformers model again."""
    return model.merge_and_unload()
