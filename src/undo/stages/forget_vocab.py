"""The forget vocabulary: the tokens that the forget text uses far more often than the retain text, from data.

A token belongs when it occurs at least MIN_COUNT times as a target in the forget training blocks and its
frequency there is at least RATIO times its frequency in the retain training blocks (add-one smoothed, so tokens
the retain text never uses are compared fairly). On the embedded corpora RATIO 10 picks 871 Korean tokens, 82% of
the Korean target tokens and 0.12% of the English ones (2 to 50 change the set by under 5%); for arithmetic, 81
number tokens that only products and dividends reach (11.6% of the x/÷ targets, 0.01% of the +/- ones).
"""

from __future__ import annotations

import numpy as np
import torch

from undo.data.blocks import TokenBlocks
from undo.experiment import Experiment

RATIO = 10.0
MIN_COUNT = 5


def token_counts(blocks: TokenBlocks, vocab_size: int) -> np.ndarray:
    """How often each token id is a target in the blocks."""
    ids = blocks.ids if blocks.mask is None else blocks.ids[blocks.mask]
    return np.bincount(ids.ravel(), minlength=vocab_size)


def select(forget_counts: np.ndarray, retain_counts: np.ndarray, ratio: float = RATIO, min_count: int = MIN_COUNT):
    """(V,) bool: the tokens much more frequent in the forget counts than in the retain counts."""
    size = len(forget_counts)
    forget = (forget_counts + 1) / (forget_counts.sum() + size)
    retain = (retain_counts + 1) / (retain_counts.sum() + size)
    return (forget_counts >= min_count) & (forget >= ratio * retain)


def forget_vocabulary(exp: Experiment) -> torch.Tensor:
    """(V,) bool over the experiment's tokenizer: its setting's forget domains against its retain domains."""
    size = len(exp.tokenizer)

    def counts(mix: dict[str, float]) -> np.ndarray:
        return sum(token_counts(exp.blocks(domain, "train"), size) for domain in mix)

    return torch.from_numpy(select(counts(exp.setting.forget_mix), counts(exp.setting.retain_mix)))


@torch.no_grad()
def reset_rows(model, tokens: torch.Tensor, seed: int) -> None:
    """Re-initialise the embedding rows (and output-head rows, where untied) of `tokens` as a fresh model's are
    drawn: normal(0, initializer_range), seeded."""
    generator = torch.Generator().manual_seed(seed)
    rows = tokens.nonzero().squeeze(1)
    std = model.config.initializer_range
    weights = {id(w): w for w in (model.get_input_embeddings().weight, model.get_output_embeddings().weight)}
    for weight in weights.values():
        fresh = torch.randn(len(rows), weight.size(1), generator=generator) * std
        weight[rows.to(weight.device)] = fresh.to(weight.device, weight.dtype)
