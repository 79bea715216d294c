"""Loss functions as small pure functions of logits, hidden states and masks.

Every next-token quantity is computed at the positions that predict a target token: position t predicts token
t + 1, and counts when `loss_mask[:, t + 1]` is set (padding and, for QA data, question tokens are not targets).
RMU's hidden-state terms count the same positions: those where the model predicts a target.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


def prediction_mask(loss_mask: torch.Tensor) -> torch.Tensor:
    """(B, L) bool: position t counts when token t + 1 is a target; the last position never counts.

    Working on full-length tensors with this mask avoids copying the (B, L, V) logits into a shifted slice."""
    mask = torch.zeros_like(loss_mask)
    mask[:, :-1] = loss_mask[:, 1:]
    return mask


def nll_sum(logits: torch.Tensor, input_ids: torch.Tensor, loss_mask: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Summed next-token negative log-likelihood over target tokens, and their count (for token weighting)."""
    mask = prediction_mask(loss_mask)
    labels = torch.full_like(input_ids, -100)
    labels[:, :-1] = input_ids[:, 1:]
    labels = labels.masked_fill(~mask, -100)
    total = F.cross_entropy(logits.float().view(-1, logits.size(-1)), labels.view(-1), reduction="sum")
    return total, int(mask.sum())


def cross_entropy(logits: torch.Tensor, input_ids: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over target tokens."""
    total, count = nll_sum(logits, input_ids, loss_mask)
    return total / max(count, 1)


def _masked_mean(per_position: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    mask = prediction_mask(loss_mask).to(per_position.dtype)
    return (per_position * mask).sum() / mask.sum().clamp_min(1)


def forward_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """KL(p_teacher || p_student) over the full vocabulary at temperature 1, mean over target positions."""
    log_t = F.log_softmax(teacher_logits.float(), dim=-1)
    log_s = F.log_softmax(student_logits.float(), dim=-1)
    per_position = F.kl_div(log_s, log_t, reduction="none", log_target=True).sum(-1)
    return _masked_mean(per_position, loss_mask)


def softcap(logits: torch.Tensor, cap: float | None) -> torch.Tensor:
    """Gemma-2's final-logit soft-capping: cap * tanh(logits / cap)."""
    return logits if cap is None else torch.tanh(logits / cap) * cap


def _kl_rows(student_hidden, teacher_hidden, student_head, teacher_head, student_cap, teacher_cap) -> torch.Tensor:
    """Summed KL(p_teacher || p_student) of a few positions, their logits computed here in fp32."""
    with torch.autocast(student_hidden.device.type, enabled=False):
        student = softcap(student_hidden.float() @ student_head.float().t(), student_cap)
        teacher = softcap(teacher_hidden.float() @ teacher_head.float().t(), teacher_cap)
        return F.kl_div(F.log_softmax(student, -1), F.log_softmax(teacher, -1), reduction="sum", log_target=True)


def chunked_forward_kl(
    student_hidden: torch.Tensor,
    teacher_hidden: torch.Tensor,
    student_head: torch.Tensor,
    teacher_head: torch.Tensor,
    loss_mask: torch.Tensor,
    caps: tuple[float | None, float | None] = (None, None),
    chunk_rows: int = 1024,
) -> torch.Tensor:
    """`forward_kl` from the final hidden states (B, L, d) and output-head weights (V, d) of student and teacher,
    `chunk_rows` positions at a time: only one chunk's (rows, V) logits exist at once (recomputed in the backward
    pass), never the (B, L, V) logits of either model, which at a 256k vocabulary dominate memory."""
    rows = prediction_mask(loss_mask).reshape(-1).nonzero().squeeze(1)
    student_rows = student_hidden.reshape(-1, student_hidden.size(-1))[rows]
    teacher_rows = teacher_hidden.reshape(-1, teacher_hidden.size(-1))[rows]
    total = student_rows.new_zeros((), dtype=torch.float32)
    for start in range(0, len(rows), chunk_rows):
        chunk = slice(start, start + chunk_rows)
        total = total + checkpoint(
            _kl_rows, student_rows[chunk], teacher_rows[chunk], student_head, teacher_head, *caps, use_reentrant=False
        )
    return total / max(len(rows), 1)


def kl_uniform(logits: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """KL(Uniform || p) = sum_v (1/V)(log(1/V) - log p(v)), mean over target positions (MaxEnt's forget loss)."""
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
