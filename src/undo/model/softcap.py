"""Gemma-2's soft-cap, cap * tanh(x / cap), on the attention scores and the output logits, evaluated through
sigmoid in fp32 on a CPU: tanh(y) = 2 sigmoid(2y) - 1 is the same function, and torch's CPU tanh runs scalar code,
far slower than its sigmoid (`benchmarks/softcap_cost.py`; docs/performance.md). Elsewhere (a GPU, bf16) torch's
tanh is used, as transformers does.

Models use it through `attention_implementation()`, a registered variant of transformers' eager attention. The
name is not saved with a model: a saved model loads with plain transformers and computes the same function.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ATTENTION = "eager_softcap"


def _through_sigmoid(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype == torch.float32


def soft_cap(x: torch.Tensor, cap: float | None) -> torch.Tensor:
    """cap * tanh(x / cap); x unchanged without a cap."""
    if cap is None:
        return x
    if not _through_sigmoid(x):
        return torch.tanh(x / cap) * cap
    return torch.sigmoid(x * (2 / cap)).mul(2 * cap).sub_(cap)


def tanh_(x: torch.Tensor) -> torch.Tensor:
    """tanh in place, for tensors autograd does not track."""
    return x.mul_(2).sigmoid_().mul_(2).sub_(1) if _through_sigmoid(x) else x.tanh_()


def attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, softcap=None, **kwargs):
    """transformers' eager attention (grouped key/value heads, additive mask, fp32 softmax) with the scores
    capped by `soft_cap`; transformers passes Gemma-2's cap as `softcap`."""
    groups = query.size(1) // key.size(1)
    key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
    scale = module.head_dim**-0.5 if scaling is None else scaling
    scores = soft_cap(torch.matmul(query, key.transpose(2, 3)) * scale, softcap)
    if attention_mask is not None:
        scores = scores + attention_mask
    weights = F.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = F.dropout(weights, p=dropout, training=module.training)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


def attention_implementation() -> str:
    """The `attn_implementation` name of `attention` (with eager attention's masks), registered with transformers."""
    # transformers is heavy: imported where a model is built or loaded, so --help and --dry-run stay light
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(ATTENTION, attention)
    AttentionMaskInterface.register(ATTENTION, eager_mask)
    return ATTENTION
