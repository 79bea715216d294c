"""Pack documents into fixed-length blocks: documents joined by an end-of-text token, one continuous stream.

Nothing is dropped except the final partial block. An optional per-token loss mask (QA data: loss on the
answer tokens only) travels with the tokens through packing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np


class Packer:
    """Accumulates token ids (and masks) and hands out full blocks of `block_len` tokens."""

    def __init__(self, block_len: int, eot_id: int):
        self.block_len = block_len
        self.eot_id = eot_id
        self._ids: list[int] = []
        self._mask: list[bool] = []
        self.n_documents = 0
        self.n_tokens = 0

    def add(self, ids: list[int], mask: list[bool] | None = None) -> None:
        """Append one document followed by the end-of-text token (which inherits the last token's mask)."""
        if mask is None:
            mask = [True] * len(ids)
        if len(mask) != len(ids):
            raise ValueError(f"mask has {len(mask)} entries for {len(ids)} tokens")
        self._ids.extend(ids)
        self._ids.append(self.eot_id)
        self._mask.extend(mask)
        self._mask.append(mask[-1] if mask else True)
        self.n_documents += 1
        self.n_tokens += len(ids) + 1

    def full_blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (ids, mask) for every complete block accumulated so far."""
        n_full = len(self._ids) // self.block_len
        if n_full == 0:
            return
        cut = n_full * self.block_len
        ids = np.asarray(self._ids[:cut], dtype=np.int64).reshape(n_full, self.block_len)
        mask = np.asarray(self._mask[:cut], dtype=bool).reshape(n_full, self.block_len)
        del self._ids[:cut], self._mask[:cut]
        yield ids, mask

    @property
    def remainder(self) -> int:
        """Tokens left over that do not fill a block (dropped at the end)."""
        return len(self._ids)


def pack(
    docs: Iterable[list[int] | tuple[list[int], list[bool]]], block_len: int, eot_id: int
) -> tuple[np.ndarray, np.ndarray, Packer]:
    """Pack already-tokenized documents in memory; returns ids (N, L), mask (N, L) and the packer's counts."""
    packer = Packer(block_len, eot_id)
    ids_parts, mask_parts = [], []
    for doc in docs:
        ids, mask = doc if isinstance(doc, tuple) else (doc, None)
        packer.add(list(ids), mask)
        for block_ids, block_mask in packer.full_blocks():
            ids_parts.append(block_ids)
            mask_parts.append(block_mask)
    if not ids_parts:
        empty = np.zeros((0, block_len), dtype=np.int64)
        return empty, empty.astype(bool), packer
    return np.concatenate(ids_parts), np.concatenate(mask_parts), packer
