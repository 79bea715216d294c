"""Secrets (Hugging Face and wandb tokens): read from the environment or `tokens/<name>_token.txt`, never
written anywhere. `tokens/` is the project's (beside pyproject.toml), whatever the working directory;
UNDO_TOKENS_DIR (or the scripts' --tokens) points elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

from undo.errors import UserError

ENV = {"hf": "HF_TOKEN", "wandb": "WANDB_API_KEY", "openai": "OPENAI_API_KEY"}
PROJECT = Path(__file__).resolve().parents[3]  # src/undo/io/credentials.py -> the project


def tokens_dir() -> Path:
    if os.environ.get("UNDO_TOKENS_DIR"):
        return Path(os.environ["UNDO_TOKENS_DIR"])
    return PROJECT / "tokens" if (PROJECT / "pyproject.toml").is_file() else Path("tokens")


def read_token(name: str) -> str | None:
    """The token from its environment variable, else from tokens/<name>_token.txt, else None."""
    value = os.environ.get(ENV[name])
    if value:
        return value.strip()
    path = tokens_dir() / f"{name}_token.txt"
    if not path.exists():
        return None
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) else "not UTF-8 text"
        raise UserError(
            f"cannot read the {name} token file {path} ({reason}): write the token alone on one line, or remove it"
        ) from None
