"""Tokenizers: the committed byte-level BPE for the embedded scale, Gemma-2's from the hub at paper scale."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources
from pathlib import Path

from undo.errors import UserError

EMBEDDED = "embedded"


def embedded_tokenizer_file() -> Path:
    return Path(str(resources.files("undo.data") / "tokenizer" / "tokenizer.json"))


@lru_cache(maxsize=4)
def load_tokenizer(name: str):
    """A transformers fast tokenizer with pad and end-of-text tokens set (pad = 0, eos = 1 for both kinds)."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if name == EMBEDDED:
        path = embedded_tokenizer_file()
        if not path.is_file():
            raise UserError(f"tokenizer file {path} is missing: regenerate it with scripts/train_tokenizer.py")
        return PreTrainedTokenizerFast(tokenizer_file=str(path), pad_token="<pad>", eos_token="<|endoftext|>")
    from undo.credentials import read_token
    from undo.hub import fetching

    with fetching(f"tokenizer {name}"):
        return AutoTokenizer.from_pretrained(name, token=read_token("hf"))


def tokenizer_fingerprint(name: str) -> str:
    """Identifies a tokenizer's exact vocabulary and merges for cache keys."""
    if name == EMBEDDED:
        return hashlib.sha256(embedded_tokenizer_file().read_bytes()).hexdigest()[:16]
    return name
