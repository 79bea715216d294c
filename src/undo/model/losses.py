"""Loss functions as small pure functions of logits, hidden states and masks.

Every next-token quantity is computed at the positions that predict a target token: position t predicts token
t + 1, and counts when `loss_mask[:, t + 1]` is set (padding and, for QA data, question tokens are not targets).
RMU's hidden-state terms count the same positions: those where the model predicts a target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F

from undo.model.softcap import soft_cap, tanh_


def prediction_mask(loss_mask: torch.Tensor) -> torch.Tensor:
    """(B, L) bool: position t counts when token t + 1 is a target; the last position never counts.

    Working on full-length tensors with this mask avoids copying the (B, L, V) logits into a shifted slice."""
    mask = torch.zeros_like(loss_mask)
    mask[:, :-1] = loss_mask[:, 1:]
    return mask


def token_mean(total: torch.Tensor, count: int | torch.Tensor) -> torch.Tensor:
    """`total` over the target tokens it sums, `count`. Under data parallelism each process divides by the mean
    token count of all processes instead of its own: the mean of their gradients (what data parallelism applies)
    is then the token mean over the global batch, as one process computes it, however the targets fall."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        shared = torch.as_tensor(count, dtype=torch.float64, device=total.device).reshape(1).clone()
        dist.all_reduce(shared)
        return total / max(shared.item() / dist.get_world_size(), 1.0)
    return total / (count.clamp_min(1) if isinstance(count, torch.Tensor) else max(count, 1))


@dataclass
class Head:
    """Next-token logits left uncomputed: the final (normed) hidden states (..., d), the output-head weight (V, d)
    and the logit soft-cap. The losses below accept it in place of logits and compute the logits of
    `chunk_rows` target positions at a time in fp32 (None: all at once), with their gradient in the same pass, so
    the (B, L, V) logits are neither kept for the backward pass nor recomputed: at a 256k vocabulary they dominate
    memory and time."""

    hidden: torch.Tensor
    weight: torch.Tensor
    cap: float | None = None
    chunk_rows: int | None = None

    def logits(self) -> torch.Tensor:
        """All the logits at once, through autograd: the faster way at a small vocabulary."""
        return soft_cap(F.linear(self.hidden, self.weight), self.cap)


Logits = torch.Tensor | Head


def _head_dtype(device: torch.device) -> torch.dtype:
    """The dtype of the head's products: autocast's where it is on, as the model's own head would compute them
    (bf16 on a GPU: an fp32 product there halved the throughput of a whole training step); else fp32."""
    return torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type) else torch.float32


def _capped_logits(hidden: torch.Tensor, weight: torch.Tensor, cap: float | None):
    """fp32 soft-capped logits of a chunk and, with a cap, tanh(logits / cap) (the soft-cap's slope is 1 - t^2)."""
    raw = (hidden @ weight.t()).float()
    if cap is None:
        return raw, None
    t = tanh_(raw.div_(cap))
    return t * cap, t


class _Labels:
    """One-hot targets: the loss is the cross-entropy."""

    def __init__(self, labels: torch.Tensor):
        self.labels = labels

    def chunk(self, part: slice) -> _Labels:
        return _Labels(self.labels[part])

    def loss(self, logits: torch.Tensor, lse: torch.Tensor) -> torch.Tensor:
        return (lse.squeeze(1) - logits.gather(1, self.labels[:, None]).squeeze(1)).sum()

    def subtract_from(self, probs: torch.Tensor) -> None:
        probs[torch.arange(len(self.labels), device=probs.device), self.labels] -= 1


class _Uniform:
    """The uniform distribution over the vocabulary (MaxEnt's forget target)."""

    def chunk(self, part: slice) -> _Uniform:
        return self

    def loss(self, logits: torch.Tensor, lse: torch.Tensor) -> torch.Tensor:
        return (lse.squeeze(1) - logits.mean(-1) - math.log(logits.size(-1))).sum()

    def subtract_from(self, probs: torch.Tensor) -> None:
        probs.sub_(1 / probs.size(-1))


class _Distribution:
    """Given target distributions (rows sum to 1; zeros allowed: xlogy(0, 0) = 0)."""

    def __init__(self, p: torch.Tensor):
        self.p = p

    def loss(self, logits: torch.Tensor, lse: torch.Tensor) -> torch.Tensor:
        return (torch.xlogy(self.p, self.p) - self.p * logits).sum() + lse.sum()

    def subtract_from(self, probs: torch.Tensor) -> None:
        probs.sub_(self.p)


class _Teacher:
    """A frozen teacher's distribution (or a `view` of it) from its own head, a chunk of positions at a time."""

    def __init__(self, head: Head, hidden: torch.Tensor, view=None):
        self.weight = head.weight.to(_head_dtype(hidden.device))  # cast once, not at every chunk
        self.hidden, self.cap, self.view = hidden, head.cap, view

    def chunk(self, part: slice) -> _Distribution:
        logits, _ = _capped_logits(self.hidden[part].to(self.weight.dtype), self.weight, self.cap)
        return _Distribution(F.softmax(logits, -1) if self.view is None else self.view(logits))


class _HeadLoss(torch.autograd.Function):
    """Sum over rows of KL(target || softmax(z)), z the soft-capped logits of `hidden @ weight.T`, a chunk of rows
    at a time. The gradient, (softmax(z) - target) * the soft-cap's slope, is taken through the head while the
    chunk's logits exist; the backward pass only scales it."""

    @staticmethod
    def forward(ctx, hidden, weight, head: Head, target):
        want_hidden, want_weight = ctx.needs_input_grad[:2]
        grad_hidden = torch.empty_like(hidden) if want_hidden else None
        grad_weight = torch.zeros_like(weight, dtype=torch.float32) if want_weight else None
        total = hidden.new_zeros((), dtype=torch.float32)
        w = weight.to(_head_dtype(hidden.device))  # cast once, not at every chunk
        step = head.chunk_rows or max(len(hidden), 1)
        with torch.autocast(hidden.device.type, enabled=False):  # dtypes are explicit below
            for start in range(0, len(hidden), step):
                part = slice(start, start + step)
                h = hidden[part].to(w.dtype)
                logits, t = _capped_logits(h, w, head.cap)
                aim = target.chunk(part)
                lse = torch.logsumexp(logits, -1, keepdim=True)
                total += aim.loss(logits, lse)
                if not (want_hidden or want_weight):
                    continue
                grad = logits.sub_(lse).exp_()
                aim.subtract_from(grad)
                if t is not None:
                    grad.mul_(t.mul_(t).neg_().add_(1))
                grad = grad.to(w.dtype)
                if want_hidden:
                    grad_hidden[part] = grad @ w
                if want_weight:
                    grad_weight += (grad.t() @ h).float()
        ctx.save_for_backward(grad_hidden, grad_weight)
        ctx.weight_dtype = weight.dtype
        return total

    @staticmethod
    def backward(ctx, grad_total):
        grad_hidden, grad_weight = ctx.saved_tensors
        if grad_hidden is not None:
            grad_hidden = grad_hidden * grad_total.to(grad_hidden.dtype)
        if grad_weight is not None:
            grad_weight = (grad_weight * grad_total).to(ctx.weight_dtype)
        return grad_hidden, grad_weight, None, None


def _picked(hidden: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    return hidden.reshape(-1, hidden.size(-1))[rows]


def _over_rows(head: Head, mask: torch.Tensor, target) -> tuple[torch.Tensor, int]:
    """KL(target(rows) || the head's distribution) summed over the positions of `mask` (their flat indices are
    `rows`), and their count."""
    rows = mask.reshape(-1).nonzero().squeeze(1)
    return _HeadLoss.apply(_picked(head.hidden, rows), head.weight, head, target(rows)), len(rows)


def _forward_kl_per_position(teacher: torch.Tensor, student: torch.Tensor, view=None) -> torch.Tensor:
    log_q = F.log_softmax(student, -1)
    if view is None:
        return F.kl_div(log_q, F.log_softmax(teacher, -1), reduction="none", log_target=True).sum(-1)
    p = view(teacher)  # zeros allowed: xlogy(0, 0) = 0
    return (torch.xlogy(p, p) - p * log_q).sum(-1)


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
        return _over_rows(logits, mask, lambda rows: _Labels(labels.reshape(-1)[rows]))
    labels = labels.masked_fill(~mask, -100)
    total = F.cross_entropy(logits.float().view(-1, logits.size(-1)), labels.view(-1), reduction="sum")
    return total, int(mask.sum())


def cross_entropy(logits: Logits, input_ids: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over target tokens."""
    total, count = nll_sum(logits, input_ids, loss_mask)
    return token_mean(total, count)


def _masked_mean(per_position: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    mask = prediction_mask(loss_mask).to(per_position.dtype)
    return token_mean((per_position * mask).sum(), mask.sum())


def forward_kl(teacher_logits: Logits, student_logits: Logits, loss_mask: torch.Tensor, view=None) -> torch.Tensor:
    """KL(p_teacher || p_student) over the full vocabulary at temperature 1, mean over target positions; `view`
    (MaskTokens, TopKTail) maps the teacher's logits to the distribution the student is taught instead."""
    if isinstance(student_logits, Head):
        mask = prediction_mask(loss_mask)
        total, count = _over_rows(
            student_logits, mask, lambda rows: _Teacher(teacher_logits, _picked(teacher_logits.hidden, rows), view)
        )
        return token_mean(total, count)
    per_position = _forward_kl_per_position(teacher_logits.float(), student_logits.float(), view)
    return _masked_mean(per_position, loss_mask)


def kl_uniform(logits: Logits, loss_mask: torch.Tensor) -> torch.Tensor:
    """KL(Uniform || p) = sum_v (1/V)(log(1/V) - log p(v)), mean over target positions (MaxEnt's forget loss)."""
    if isinstance(logits, Head):
        total, count = _over_rows(logits, prediction_mask(loss_mask), lambda rows: _Uniform())
        return token_mean(total, count)
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
