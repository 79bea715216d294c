"""Tokenize a corpus split once and cache its packed blocks, keyed by corpus, tokenizer and block length."""

from __future__ import annotations

import hashlib
import itertools
import json
import sys
from pathlib import Path

from undo.data.arithmetic import QA
from undo.data.blocks import BlockWriter, DamagedBlocks, TokenBlocks, load_blocks
from undo.data.corpora import corpus_name, iter_documents, source_fingerprint
from undo.data.packing import Packer
from undo.data.tokenizer import load_tokenizer, tokenizer_fingerprint
from undo.errors import UserError

ENCODE_CHUNK = 512  # documents per batched tokenizer call
BUDGET_KEYS = {"train": "train_tokens", "validation": "validation_tokens"}


def cache_key(source: dict, tokenizer: str, block_len: int, split: str) -> str:
    spec = {
        "source": source_fingerprint(source),
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "block_len": block_len,
        "split": split,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


def cache_folder(source: dict, tokenizer: str, block_len: int, split: str, cache_root: Path) -> Path:
    key = cache_key(source, tokenizer, block_len, split)
    return Path(cache_root) / f"{corpus_name(source)}-{split}-{block_len}-{key}"


def prepared_blocks(source: dict, tokenizer: str, block_len: int, split: str, cache_root: Path) -> TokenBlocks:
    """The packed blocks of one corpus split, from the cache when present and intact, else built and cached."""
    folder = cache_folder(source, tokenizer, block_len, split, cache_root)
    if folder.is_dir():
        try:
            return load_blocks(folder)
        except DamagedBlocks as err:
            print(f"cache entry {folder} is damaged ({err}); rebuilding it", file=sys.stderr)
    return _build(source, tokenizer, block_len, split, folder)


def encode_documents(backend, docs: list[str | QA]) -> list[tuple[list[int], list[bool] | None]]:
    """Token ids and loss mask per document: None (every token a target) for text; for a QA the answer's
    tokens only. Prompt, answer and suffix are encoded apart, so an evaluation prompt tokenizes exactly as the
    prompt part of a training document."""
    encode = lambda texts: [e.ids for e in backend.encode_batch(texts, add_special_tokens=False)]  # noqa: E731
    texts = [d for d in docs if isinstance(d, str)]
    qas = [d for d in docs if isinstance(d, QA)]
    text_ids = iter(encode(texts))
    pieces = zip(*(encode([getattr(q, part) for q in qas]) for part in ("prompt", "answer", "suffix")), strict=True)
    out = []
    for doc in docs:
        if isinstance(doc, str):
            out.append((next(text_ids), None))
            continue
        prompt, answer, suffix = next(pieces)
        out.append((prompt + answer + suffix, [False] * len(prompt) + [True] * len(answer) + [False] * len(suffix)))
    return out


def _build(source: dict, tokenizer: str, block_len: int, split: str, folder: Path) -> TokenBlocks:
    tok = load_tokenizer(tokenizer)
    backend = tok.backend_tokenizer
    max_tokens = source.get(BUDGET_KEYS[split])
    packer = Packer(block_len, tok.eos_token_id)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        writer = BlockWriter(folder, block_len, len(tok))
    except OSError as err:
        raise UserError(
            f"cannot write the data cache at {folder.parent} ({err.strerror}): choose a writable --out"
        ) from None
    try:
        docs = iter_documents(source, split)
        while max_tokens is None or writer.n_blocks * block_len < max_tokens:
            chunk = list(itertools.islice(docs, ENCODE_CHUNK))
            if not chunk:
                break
            for ids, mask in encode_documents(backend, chunk):
                packer.add(ids, mask)
            for ids, mask in packer.full_blocks():
                if max_tokens is not None:
                    ids, mask = ids[: -(-max_tokens // block_len) - writer.n_blocks], mask[: len(ids)]
                writer.write(ids, mask)
    except BaseException:
        writer.abort()
        raise
    if writer.n_blocks == 0:
        writer.abort()
        raise UserError(
            f"corpus {corpus_name(source)} has no {split} data after filtering "
            f"({packer.n_documents} documents, {packer.n_tokens} tokens for blocks of {block_len}): "
            "add documents or shorten the blocks"
        )
    meta = {
        "corpus": source,
        "tokenizer": tokenizer,
        "vocab_size": len(tok),
        "split": split,
        "n_documents": packer.n_documents,
        "n_tokens_packed": packer.n_tokens,
        "n_tokens_unused": packer.n_tokens - writer.n_blocks * block_len,  # final partial block, or over budget
    }
    return writer.close(meta)
