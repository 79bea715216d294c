"""Shrink-and-perturb: the "noise" of UNDO, applied once to a copy of the unlearned teacher."""

from __future__ import annotations

import torch

from undo.errors import UserError
from undo.model.models import unique_parameters


def shrink_and_perturb(model: torch.nn.Module, alpha: float, beta: float, seed: int) -> torch.nn.Module:
    """theta <- (1 - alpha) * theta + alpha * beta * N in place, N ~ xavier_uniform for 2-D weights (embeddings
    included) and N = 0 for 1-D weights (norm gains are only shrunk). Tied weights are noised once."""
    for name, value in (("alpha", alpha), ("beta", beta)):
        if not 0.0 <= value <= 1.0:
            raise UserError(f"UNDO {name} must be in [0, 1], got {value}")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in unique_parameters(model):
            p.mul_(1.0 - alpha)
            if p.ndim >= 2 and alpha * beta != 0.0:
                noise = torch.empty(p.shape, dtype=torch.float32)
                torch.nn.init.xavier_uniform_(noise, generator=generator)
                p.add_(noise.to(p.device, p.dtype), alpha=alpha * beta)
    return model
