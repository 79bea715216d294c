"""Validation cross-entropy per domain, token-weighted and summed over all processes before dividing."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from undo.data.blocks import TokenBlocks
from undo.data.sampling import to_batch
from undo.evaluate.metrics import Metric
from undo.evaluate.tasks import Task, no_facts
from undo.model.heads import predictions
from undo.model.losses import nll_sum

if TYPE_CHECKING:  # annotations only: the experiment sits above this layer
    from undo.experiment import Experiment


def ce_metric(domain: str) -> Metric:
    return Metric(f"{domain}_ce", higher_is_better=False, relative=True)


@torch.inference_mode()
def domain_ce(model, blocks: TokenBlocks, accelerator, batch_size: int = 64) -> float:
    """Mean next-token CE over every target token of the blocks; each process takes every world-th batch."""
    total = torch.zeros(2, dtype=torch.float64, device=accelerator.device)
    starts = range(accelerator.process_index * batch_size, len(blocks), accelerator.num_processes * batch_size)
    for start in starts:
        batch = to_batch(blocks, np.arange(start, min(start + batch_size, len(blocks))))
        ids, mask = batch["input_ids"].to(accelerator.device), batch["loss_mask"].to(accelerator.device)
        with accelerator.autocast():
            logits = predictions(model, ids)
        nll, count = nll_sum(logits, ids, mask)
        total += torch.stack([nll.double(), torch.tensor(count, dtype=torch.float64, device=total.device)])
    total = accelerator.reduce(total, reduction="sum")
    return float(total[0] / total[1].clamp_min(1))


class DomainCE(Task):
    """`<domain>_ce`: CE on the first `eval_blocks` validation blocks of the domain (lower is better)."""

    def __init__(self, domain: str):
        self.domain = domain

    @property
    def metrics(self) -> tuple[Metric, ...]:
        return (ce_metric(self.domain),)

    def evaluate(self, model, exp: Experiment, names=None, held_out=None) -> dict[str, float]:
        no_facts(self, held_out)
        blocks = exp.blocks(self.domain, "validation").head(exp.scale.eval_blocks)
        return {ce_metric(self.domain).name: domain_ce(model, blocks, exp.accelerator, exp.scale.eval_batch_size)}
