"""Secrets (Hugging Face and wandb tokens): read from the environment or tokens/*.txt, never written anywhere."""

from __future__ import annotations

import os
from pathlib import Path

ENV = {"hf": "HF_TOKEN", "wandb": "WANDB_API_KEY"}


def tokens_dir() -> Path:
    return Path(os.environ.get("UNDO_TOKENS_DIR", "tokens"))


def read_token(name: str) -> str | None:
    """The token from its environment variable, else from tokens/<name>_token.txt, else None."""
    value = os.environ.get(ENV[name])
    if value:
        return value.strip()
    path = tokens_dir() / f"{name}_token.txt"
    if path.is_file():
        return path.read_text().strip() or None
    return None
