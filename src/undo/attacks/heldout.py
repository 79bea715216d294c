"""The held-out-facts attack's split: train on one part of the forget facts, score on the part never shown."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, Strict

from undo.data.facts import FactSplit
from undo.params import Schema, Seed


class HeldOut(Schema):
    """A keyed split of the forget facts: `share` of them held out from the attack's data and scored."""

    key: Seed = 0
    share: Annotated[float, Strict(), Field(gt=0, lt=1)] = 0.5

    def split(self) -> FactSplit:
        return FactSplit(self.key, self.share)
