"""A keyed split of a setting's facts into those an attack may show and those it holds out.

An attack that trains on some facts and is scored on others it never showed separates waking latent knowledge
from teaching it again. A fact is what a problem or question tests: an arithmetic problem's unordered operand
pair of its addition or multiplication (3 x 4, 4 x 3, 12 / 4 and 12 / 3 are one fact), a quiz question's text.
Membership is a keyed hash of the fact, so a split is the same on every machine and for every model.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

PARTS = ("shown", "held_out")


@dataclass(frozen=True)
class FactSplit:
    """Facts whose hash under `key` falls below `held_out` (a share) are held out; the rest may be shown."""

    key: int
    held_out: float = 0.5

    def part(self, fact: str) -> Literal["shown", "held_out"]:
        digest = hashlib.blake2b(f"{self.key}:{fact}".encode(), digest_size=8).digest()
        return "held_out" if int.from_bytes(digest, "little") / 2**64 < self.held_out else "shown"

    def source(self, part: str) -> dict:
        """How a corpus source names the part it keeps (its cache key covers it)."""
        return {"key": self.key, "held_out": self.held_out, "part": part}

    @classmethod
    def of_source(cls, spec: dict) -> tuple[FactSplit, str]:
        return cls(spec["key"], spec["held_out"]), spec["part"]
