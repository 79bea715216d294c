"""Loss functions as small pure functions of logits, hidden states and masks.

Every next-token quantity is computed at the positions that predict a target token: position t predicts token
t + 1, and counts when `loss_mask[:, t + 1]` is set (padding and, for QA data, question tokens are not targets).
RMU's hidden-state terms count the same positions: those where the model predicts a target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


def prediction_mask(loss_mask: torch.Tensor) -> torch.Tensor:
    """(B, L) bool: position t counts when token t + 1 is a target; the last position never counts.

    Working on full-length tensors with this mask avoids copying the (B, L, V) logits into a shifted slice."""
    mask = torch.zeros_like(loss_mask)
    mask[:, :-1] = loss_mask[:, 1:]
    return mask


@dataclass
class Head:
    """Next-token logits left uncomputed: the final (normed) hidden states (..., d), the output-head weight (V, d)
    and the logit soft-cap. The losses below accept it in place of logits and compute the logits of
    `chunk_rows` target positions at a time in fp32 (recomputed in the backward pass; None: all at once), so the
    (B, L, V) logits never exist: at a 256k vocabulary they dominate memory."""

    hidden: torch.Tensor
    weight: torch.Tensor
    cap: float | None = None
    chunk_rows: int | None = None


Logits = torch.Tensor | Head


def softcap(logits: torch.Tensor, cap: float | None) -> torch.Tensor:
    """Gemma-2's final-logit soft-capping: cap * tanh(logits / cap)."""
    return logits if cap is None else torch.tanh(logits / cap) * cap


def _chunk_logits(hidden: torch.Tensor, head: Head) -> torch.Tensor:
    """fp32 logits of a chunk of positions. Under autocast the product runs in autocast's dtype, as the model's own
    head would (bf16 on a GPU: an fp32 product there halved the throughput of a whole training step); the soft-cap
    and everything after it run in fp32."""
    weight = head.weight
    if not torch.is_autocast_enabled(hidden.device.type):
        hidden, weight = hidden.float(), weight.float()
    return softcap((hidden @ weight.t()).float(), head.cap)


def _head_chunk(row_loss, heads: list[Head], hidden: list[torch.Tensor], targets: list[torch.Tensor]):
    logits = [_chunk_logits(h, head) for h, head in zip(hidden, heads, strict=True)]
    with torch.autocast(hidden[0].device.type, enabled=False):
        return row_loss(*logits, *targets)


def _over_heads(row_loss, heads: list[Head], mask: torch.Tensor, *targets: torch.Tensor) -> tuple[torch.Tensor, int]:
    """`row_loss(*logits, *targets)` summed over the positions of `mask`, from each head's hidden states a chunk of
    positions at a time, and the number of positions."""
    rows = mask.reshape(-1).nonzero().squeeze(1)
    hidden = [head.hidden.reshape(-1, head.hidden.size(-1))[rows] for head in heads]
    picked = [target.reshape(-1)[rows] for target in targets]
    step = heads[0].chunk_rows or max(len(rows), 1)
    total = hidden[0].new_zeros((), dtype=torch.float32)
    for start in range(0, len(rows), step):
        part = slice(start, start + step)
        chunk = ([h[part] for h in hidden], [t[part] for t in picked])
        if heads[0].chunk_rows:
            total = total + checkpoint(_head_chunk, row_loss, heads, *chunk, use_reentrant=False)
        else:
            total = total + _head_chunk(row_loss, heads, *chunk)
    return total, len(rows)


def _ce_rows(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, labels, reduction="sum")


def _kl_uniform_rows(logits: torch.Tensor) -> torch.Tensor:
    return (-math.log(logits.size(-1)) - F.log_softmax(logits, dim=-1).mean(-1)).sum()


def _forward_kl_per_position(teacher: torch.Tensor, student: torch.Tensor, view=None) -> torch.Tensor:
    log_q = F.log_softmax(student, -1)
    if view is None:
        return F.kl_div(log_q, F.log_softmax(teacher, -1), reduction="none", log_target=True).sum(-1)
    p = view(teacher)  # zeros allowed: xlogy(0, 0) = 0
    return (torch.xlogy(p, p) - p * log_q).sum(-1)


def _forward_kl_rows(teacher: torch.Tensor, student: torch.Tensor, view=None) -> torch.Tensor:
    return _forward_kl_per_position(teacher, student, view).sum()


class MaskTokens:
    """A view of the teacher: its distribution with these tokens removed and the rest renormalised (distilling
    it, the student learns to give them nothing)."""

    def __init__(self, tokens: torch.Tensor):
        self.tokens = tokens  # (V,) bool

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        return F.softmax(logits.masked_fill(self.tokens.to(logits.device), float("-inf")), dim=-1)


class TopKTail:
    """A view of the teacher that needs no labels of what is forgotten: its k most likely tokens keep their
    probabilities and the rest of the mass is spread evenly over the other tokens, so whatever the teacher
    still ranks just below the top (a suppressed capability) is not passed on."""

    def __init__(self, k: int):
        self.k = k

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        p = F.softmax(logits, dim=-1)
        top = p.topk(self.k, dim=-1)
        tail = (1 - top.values.sum(-1, keepdim=True)).clamp_min(0) / (p.size(-1) - self.k)
        return tail.expand_as(p).scatter(-1, top.indices, top.values)


def nll_sum(logits: Logits, input_ids: torch.Tensor, loss_mask: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Summed next-token negative log-likelihood over target tokens, and their count (for token weighting)."""
    mask = prediction_mask(loss_mask)
    labels = torch.full_like(input_ids, -100)
    labels[:, :-1] = input_ids[:, 1:]
    if isinstance(logits, Head):
        return _over_heads(_ce_rows, [logits], mask, labels)
    labels = labels.masked_fill(~mask, -100)
    total = F.cross_entropy(logits.float().view(-1, logits.size(-1)), labels.view(-1), reduction="sum")
    return total, int(mask.sum())


def cross_entropy(logits: Logits, input_ids: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over target tokens."""
    total, count = nll_sum(logits, input_ids, loss_mask)
    return total / max(count, 1)


def _masked_mean(per_position: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    mask = prediction_mask(loss_mask).to(per_position.dtype)
    return (per_position * mask).sum() / mask.sum().clamp_min(1)


def forward_kl(teacher_logits: Logits, student_logits: Logits, loss_mask: torch.Tensor, view=None) -> torch.Tensor:
    """KL(p_teacher || p_student) over the full vocabulary at temperature 1, mean over target positions; `view`
    (MaskTokens, TopKTail) maps the teacher's logits to the distribution the student is taught instead."""
    if isinstance(student_logits, Head):
        rows = partial(_forward_kl_rows, view=view)
        total, count = _over_heads(rows, [teacher_logits, student_logits], prediction_mask(loss_mask))
        return total / max(count, 1)
    per_position = _forward_kl_per_position(teacher_logits.float(), student_logits.float(), view)
    return _masked_mean(per_position, loss_mask)


def kl_uniform(logits: Logits, loss_mask: torch.Tensor) -> torch.Tensor:
    """KL(Uniform || p) = sum_v (1/V)(log(1/V) - log p(v)), mean over target positions (MaxEnt's forget loss)."""
    if isinstance(logits, Head):
        total, count = _over_heads(_kl_uniform_rows, [logits], prediction_mask(loss_mask))
        return total / max(count, 1)
    log_p = F.log_softmax(logits.float(), dim=-1)
    per_position = -math.log(log_p.size(-1)) - log_p.mean(-1)
    return _masked_mean(per_position, loss_mask)


def masked_mse(hidden: torch.Tensor, target: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over hidden dimensions and the positions that predict a target (RMU's terms)."""
    return _masked_mean((hidden.float() - target.float()).pow(2).mean(-1), loss_mask)


def gaussian_mmd(x: torch.Tensor, y: torch.Tensor, bandwidths: tuple[float, ...] | None = None) -> torch.Tensor:
    """Squared maximum mean discrepancy between samples x (n, d) and y (m, d) with a sum of Gaussian kernels
    exp(-|a - b|^2 / (2 s^2)).

    By default the widths follow the data, as in the public RepNoise code: s^2 = (mean pairwise squared distance
    / 4) x 2^k, k = -2..2. Fixed widths see the clouds of large activations as infinitely far apart, and the
    gradient vanishes; `bandwidths` fixes the widths s instead."""
    both = torch.cat([x, y]).float()
    sq = torch.cdist(both, both).pow(2)
    if bandwidths is None:
        base = sq.detach().mean() / 4
        variances = [base * 2.0**k for k in (-2, -1, 0, 1, 2)]
    else:
        variances = [s * s for s in bandwidths]
    kernel = sum(torch.exp(-sq / (2 * v)) for v in variances)
    n = len(x)
    return kernel[:n, :n].mean() + kernel[n:, n:].mean() - 2 * kernel[:n, n:].mean()
