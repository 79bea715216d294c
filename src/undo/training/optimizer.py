"""The optimiser (AdamW, SGD or Adagrad) with its learning-rate schedule, and sharpness-aware minimisation's
ascent step (SAM)."""

from __future__ import annotations

import torch
from torch import nn

from undo.params import Optim

SGD_MOMENTUM = 0.9


def make_optimizer(params: list[nn.Parameter], optim: Optim, fused: bool = False) -> torch.optim.Optimizer:
    """`optim.optimizer` with weight decay on matrices only; norms' gains are not decayed. `fused`: AdamW's
    update in one kernel over all parameters (undo.model.fast_paths)."""
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [
        {"params": decay, "weight_decay": optim.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    if optim.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=optim.lr, momentum=SGD_MOMENTUM)
    if optim.optimizer == "adagrad":
        return torch.optim.Adagrad(groups, lr=optim.lr)
    return torch.optim.AdamW(groups, lr=optim.lr, betas=optim.betas, fused=fused or None)


def make_scheduler(optimizer: torch.optim.Optimizer, optim: Optim):
    """Linear warmup, then constant (no `min_lr`) or cosine decay to `min_lr`."""
    # transformers is heavy: only a training job needs its schedules (--help and --dry-run stay light)
    from transformers import get_constant_schedule_with_warmup, get_cosine_with_min_lr_schedule_with_warmup

    if optim.min_lr is None or optim.min_lr == optim.lr:
        return get_constant_schedule_with_warmup(optimizer, optim.warmup)
    return get_cosine_with_min_lr_schedule_with_warmup(
        optimizer, optim.warmup, max(optim.steps, 1), min_lr=optim.min_lr
    )


def sam_perturb(params: list[nn.Parameter], rho: float) -> list[torch.Tensor]:
    """Move the weights to theta + rho * g / ||g|| (g: the current gradient); returns the saved weights."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    norm = torch.sqrt(sum(g.float().pow(2).sum() for g in grads))
    saved = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p, g in zip(params, grads, strict=False):
            p.add_(g, alpha=rho / (norm.item() + 1e-12))
    return saved


def restore(params: list[nn.Parameter], saved: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for p, s in zip(params, saved, strict=False):
            p.copy_(s)
