"""Data preparation: tokenize and pack every domain's splits into the block cache, and describe the result."""

from __future__ import annotations

import time

import numpy as np

from undo.data.prepare import cache_folder
from undo.experiment import Experiment


def unigram_entropy(ids: np.ndarray, vocab_size: int) -> float:
    """Entropy (nats) of the token frequency distribution: the CE of the best context-free predictor."""
    counts = np.bincount(np.asarray(ids).ravel(), minlength=vocab_size).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def cached(exp: Experiment, domain: str, split: str) -> bool:
    """Whether the block cache holds this domain's split already (looks only: builds and verifies nothing)."""
    scale = exp.scale
    return cache_folder(scale.corpora[domain], scale.tokenizer, scale.seq_len, split, exp.cache_root).is_dir()


def prepare(exp: Experiment) -> list[dict]:
    """Build (or find in the cache) every domain x split; one row of statistics each."""
    rows = []
    for domain in exp.domains:
        for split in ("train", "validation"):
            start = time.perf_counter()
            blocks = exp.blocks(domain, split)
            rows.append(
                {
                    "domain": domain,
                    "split": split,
                    "documents": blocks.meta["n_documents"],
                    "blocks": len(blocks),
                    "tokens": blocks.n_tokens,
                    "unigram_entropy": unigram_entropy(blocks.ids, blocks.meta["vocab_size"]),
                    "seconds": time.perf_counter() - start,
                }
            )
    return rows
