"""Batches of token blocks: shuffled epochs over one domain, or a random mixture of named domains."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from undo.data.blocks import TokenBlocks
from undo.errors import UserError


def to_batch(blocks: TokenBlocks, index: np.ndarray) -> dict[str, torch.Tensor]:
    """input_ids (B, L) int64 and loss_mask (B, L) bool for the given block indices."""
    index = np.sort(index)  # memory-map locality; row order within a batch does not matter
    ids = torch.from_numpy(np.asarray(blocks.ids[index], dtype=np.int64))
    if blocks.mask is None:
        mask = torch.ones_like(ids, dtype=torch.bool)
    else:
        mask = torch.from_numpy(np.asarray(blocks.mask[index], dtype=np.bool_))
    return {"input_ids": ids, "loss_mask": mask}


class EpochSampler:
    """Endless random blocks of one domain: each epoch is a fresh permutation; counts blocks drawn."""

    def __init__(self, blocks: TokenBlocks, seed: int):
        if len(blocks) == 0:
            raise ValueError("cannot sample from an empty set of blocks")
        self.blocks = blocks
        self.rng = np.random.default_rng(seed)
        self._order = self.rng.permutation(len(blocks))
        self._pos = 0
        self.drawn = 0

    def take(self, n: int) -> np.ndarray:
        out = []
        while n > 0:
            if self._pos == len(self._order):
                self._order, self._pos = self.rng.permutation(len(self.blocks)), 0
            part = self._order[self._pos : self._pos + n]
            self._pos += len(part)
            n -= len(part)
            out.append(part)
        index = np.concatenate(out)
        self.drawn += len(index)
        return index

    @property
    def epochs(self) -> float:
        return self.drawn / len(self.blocks)

    def state_dict(self) -> dict:
        return {
            "rng": self.rng.bit_generator.state,
            "order": torch.from_numpy(self._order.copy()),
            "pos": self._pos,
            "drawn": self.drawn,
        }

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self._order, self._pos, self.drawn = state["order"].numpy(), state["pos"], state["drawn"]


class Mixture:
    """Batches whose rows come from named domains with the given probabilities (one draw per row)."""

    def __init__(self, domains: dict[str, TokenBlocks], weights: dict[str, float], batch_size: int, seed: int):
        unknown = set(weights) - set(domains)
        if unknown:
            raise ValueError(f"mixture weights name unknown domains {sorted(unknown)}")
        self.names = [name for name in weights if weights[name] > 0]
        total = sum(weights[name] for name in self.names)
        self.probs = np.array([weights[name] / total for name in self.names])
        self.samplers = {name: EpochSampler(domains[name], seed + i) for i, name in enumerate(self.names)}
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed + 1000)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        counts = self.rng.multinomial(self.batch_size, self.probs)
        parts = [
            to_batch(self.samplers[name].blocks, self.samplers[name].take(int(count)))
            for name, count in zip(self.names, counts, strict=False)
            if count
        ]
        return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}

    def epochs(self) -> dict[str, float]:
        return {name: round(sampler.epochs, 3) for name, sampler in self.samplers.items()}

    def state_dict(self) -> dict:
        """Where the stream stands: resuming from it draws exactly the batches an uninterrupted run would."""
        return {"rng": self.rng.bit_generator.state, "samplers": {n: s.state_dict() for n, s in self.samplers.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        for name, sampler in self.samplers.items():
            sampler.load_state_dict(state["samplers"][name])


class Shard:
    """One process's rows of a stream's global batches (rows rank, rank + world, ...): data-parallel processes
    together train on exactly the batches one process would, so results do not depend on the process count."""

    def __init__(self, stream: Mixture, rank: int, world: int):
        if stream.batch_size % world:
            raise UserError(
                f"batch size {stream.batch_size} does not split over {world} processes: use a multiple of {world}"
            )
        self.stream, self.rank, self.world = stream, rank, world

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        return {key: rows[self.rank :: self.world] for key, rows in next(self.stream).items()}

    def epochs(self) -> dict[str, float]:
        return self.stream.epochs()

    def state_dict(self) -> dict:
        return self.stream.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.stream.load_state_dict(state)
