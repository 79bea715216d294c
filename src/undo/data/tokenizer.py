"""Tokenizers: the committed byte-level BPE for the embedded scale, Gemma-2's from the hub at paper scale, and for
the paper-scale rehearsal on a CPU the committed BPE padded to Gemma's vocabulary size."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

from tokenizers import Tokenizer
from tokenizers.processors import TemplateProcessing

from undo.errors import UserError
from undo.io.credentials import read_token
from undo.io.hub import fetching

END_OF_TEXT = "<|endoftext|>"
EMBEDDED = "embedded"
GEMMA_SIZED = "embedded-256k"  # the embedded BPE with unused entries up to Gemma-2's 256,000 ids
GEMMA_VOCAB = 256_000


def embedded_tokenizer_file() -> Path:
    return Path(str(resources.files("undo.data") / "tokenizer" / "tokenizer.json"))


@lru_cache(maxsize=4)
def load_tokenizer(name: str):
    """A transformers fast tokenizer with pad and end-of-text tokens set (pad = 0, eos = 1 for both kinds).

    The committed BPE starts a text with its end-of-text token where special tokens are asked for (the default of
    `tokenizer(text)`, which lm-eval uses), as Gemma-2's starts one with <bos>: every training document is
    packed after an end-of-text token, so a scored prompt is read as training read it. The data pipeline and
    the generation prompts encode without special tokens."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast  # heavy: only loading a tokenizer needs it

    if name in (EMBEDDED, GEMMA_SIZED):
        path = embedded_tokenizer_file()
        if not path.is_file():
            raise UserError(f"tokenizer file {path} is missing: regenerate it with scripts/train_tokenizer.py")
        backend = _padded(path, GEMMA_VOCAB) if name == GEMMA_SIZED else Tokenizer.from_file(str(path))
        backend.post_processor = TemplateProcessing(
            single=f"{END_OF_TEXT} $A",
            pair=f"{END_OF_TEXT} $A {END_OF_TEXT} $B",
            special_tokens=[(END_OF_TEXT, backend.token_to_id(END_OF_TEXT))],
        )
        special = dict(pad_token="<pad>", eos_token=END_OF_TEXT, bos_token=END_OF_TEXT)
        return PreTrainedTokenizerFast(tokenizer_object=backend, **special)

    with fetching(f"tokenizer {name}"):
        return AutoTokenizer.from_pretrained(name, token=read_token("hf"))


def _padded(path: Path, size: int) -> Tokenizer:
    """The BPE at `path` with `<unusedN>` entries up to `size` ids: text tokenizes exactly as before (no merge
    produces them), but embeddings, output heads and logits have the full vocabulary's size."""
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
