"""Validation cross-entropy per domain, token-weighted and summed over all processes before dividing."""

from __future__ import annotations

import numpy as np
import torch

from undo.data.blocks import TokenBlocks
from undo.data.sampling import to_batch
from undo.losses import nll_sum


@torch.inference_mode()
def domain_ce(model, blocks: TokenBlocks, accelerator, batch_size: int = 64) -> float:
    """Mean next-token CE over every target token of the blocks; each process takes every world-th batch."""
    total = torch.zeros(2, dtype=torch.float64, device=accelerator.device)
    starts = range(accelerator.process_index * batch_size, len(blocks), accelerator.num_processes * batch_size)
    for start in starts:
        batch = to_batch(blocks, np.arange(start, min(start + batch_size, len(blocks))))
        ids, mask = batch["input_ids"].to(accelerator.device), batch["loss_mask"].to(accelerator.device)
        with accelerator.autocast():
            logits = model(input_ids=ids).logits
        nll, count = nll_sum(logits, ids, mask)
        total += torch.stack([nll.double(), torch.tensor(count, dtype=torch.float64, device=total.device)])
    total = accelerator.reduce(total, reduction="sum")
    return float(total[0] / total[1].clamp_min(1))


def ce_metrics(model, domains: dict[str, TokenBlocks], accelerator, batch_size: int = 64) -> dict[str, float]:
    """{"<domain>_ce": value} for each named validation set."""
    return {f"{name}_ce": domain_ce(model, blocks, accelerator, batch_size) for name, blocks in domains.items()}
