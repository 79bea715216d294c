"""Loss functions as small pure functions of logits, hidden states and masks.

Every next-token quantity is computed at the positions that predict a target token: position t predicts token
t + 1, and counts when `loss_mask[:, t + 1]` is set (padding and, for QA data, question tokens are not targets).
RMU's hidden-state terms count the same positions: those where the model predicts a target.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


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


def kl_uniform(logits: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """KL(Uniform || p) = sum_v (1/V)(log(1/V) - log p(v)), mean over target positions (MaxEnt's forget loss)."""
    log_p = F.log_softmax(logits.float(), dim=-1)
    per_position = -math.log(log_p.size(-1)) - log_p.mean(-1)
    return _masked_mean(per_position, loss_mask)


def masked_mse(hidden: torch.Tensor, target: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over hidden dimensions and the positions that predict a target (RMU's terms)."""
    return _masked_mean((hidden.float() - target.float()).pow(2).mean(-1), loss_mask)


def gaussian_mmd(x: torch.Tensor, y: torch.Tensor, bandwidths: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)):
    """Squared maximum mean discrepancy between samples x (n, d) and y (m, d) with a sum of Gaussian kernels."""

    def kernel(a, b):
        sq = torch.cdist(a.float(), b.float()).pow(2)
        return sum(torch.exp(-sq / (2 * s * s)) for s in bandwidths)

    return kernel(x, x).mean() + kernel(y, y).mean() - 2 * kernel(x, y).mean()
