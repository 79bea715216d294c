"""Resumable training: the whole training state, saved atomically every N steps beside the run's folder, so a
killed run continues where it stopped and ends with the same weights as an uninterrupted one."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import torch

from undo.io.files import temporary

STATE = "state.pt"


class Checkpoint:
    """`<stage>/.<run>.ckpt/state.pt`, tagged with the run's fingerprint: a checkpoint of another config is
    never resumed."""

    def __init__(self, folder: Path, every: int, fingerprint: str, keep: bool = False):
        self.folder = Path(folder)
        self.every = every
        self.fingerprint = fingerprint
        self.keep = keep  # also save the state at the end, for the finished run to keep

    def due(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0

    def save(self, state: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = temporary(self.folder / STATE, "partial")
        torch.save({**state, "fingerprint": self.fingerprint}, partial)
        os.replace(partial, self.folder / STATE)

    def load(self) -> dict | None:
        """The saved state, or None (nothing saved, another config's, or damaged: then it says so)."""
        path = self.folder / STATE
        if not path.is_file():
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            print(f"checkpoint {path} is damaged ({type(err).__name__}); starting the run over", file=sys.stderr)
            return None
        if state.get("fingerprint") != self.fingerprint:
            print(f"checkpoint {path} belongs to another config; starting the run over", file=sys.stderr)
            return None
        return state

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
