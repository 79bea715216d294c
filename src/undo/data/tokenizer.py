"""Tokenizers: the committed byte-level BPE for the embedded scale, Gemma-2's from the hub at paper scale, and for
the paper-scale rehearsal on a CPU the committed BPE padded to Gemma's vocabulary size."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

from undo.errors import UserError

EMBEDDED = "embedded"
GEMMA_SIZED = "embedded-256k"  # the embedded BPE with unused entries up to Gemma-2's 256,000 ids
GEMMA_VOCAB = 256_000


def embedded_tokenizer_file() -> Path:
    return Path(str(resources.files("undo.data") / "tokenizer" / "tokenizer.json"))


@lru_cache(maxsize=4)
def load_tokenizer(name: str):
    """A transformers fast tokenizer with pad and end-of-text tokens set (pad = 0, eos = 1 for both kinds)."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if name in (EMBEDDED, GEMMA_SIZED):
        path = embedded_tokenizer_file()
        if not path.is_file():
            raise UserError(f"tokenizer file {path} is missing: regenerate it with scripts/train_tokenizer.py")
        special = dict(pad_token="<pad>", eos_token="<|endoftext|>")
        if name == EMBEDDED:
            return PreTrainedTokenizerFast(tokenizer_file=str(path), **special)
        return PreTrainedTokenizerFast(tokenizer_object=_padded(path, GEMMA_VOCAB), **special)
    from undo.credentials import read_token
    from undo.hub import fetching

    with fetching(f"tokenizer {name}"):
        return AutoTokenizer.from_pretrained(name, token=read_token("hf"))


def _padded(path: Path, size: int):
    """The BPE at `path` with `<unusedN>` entries up to `size` ids: text tokenizes exactly as before (no merge
    produces them), but embeddings, output heads and logits have the full vocabulary's size."""
    from tokenizers import Tokenizer

    spec = json.loads(path.read_text(encoding="utf-8"))
    added = spec.setdefault("added_tokens", [])
    first = 1 + max([*spec["model"]["vocab"].values(), *(t["id"] for t in added)])
    unused = dict(single_word=False, lstrip=False, rstrip=False, normalized=False, special=True)
    added += [{"id": i, "content": f"<unused{i}>", **unused} for i in range(first, size)]
    return Tokenizer.from_str(json.dumps(spec))


def tokenizer_fingerprint(name: str) -> str:
    """Identifies a tokenizer's exact vocabulary and merges for cache keys."""
    if name in (EMBEDDED, GEMMA_SIZED):
        digest = hashlib.sha256(embedded_tokenizer_file().read_bytes()).hexdigest()[:16]
        return digest if name == EMBEDDED else f"{digest}-{GEMMA_VOCAB}"
    return name
