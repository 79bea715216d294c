"""Train the byte-level BPE tokenizer shipped as ``src/undo/data/tokenizer/tokenizer.json``.

Training data: the TRAIN split of the committed LibreOffice-help corpora
(``src/undo/data/corpora/libreoffice_{en,ko}.jsonl.xz``, built by ``scripts/extract_corpora.py``),
balanced by UTF-8 bytes: all Korean train documents (in file order), and English train documents in
file order until the same number of bytes is reached (the last English document is cut at a
paragraph boundary).

Tokenizer: byte-level BPE (``tokenizers``) over digits split one by one and the ByteLevel pre-tokenizer
without prefix space, ByteLevel decoder, no post-processor (no BOS/EOS added), special tokens ``<pad>``
(id 0) and ``<|endoftext|>`` (id 1), 2048 BPE entries by default; then every whole number 10..400 (each
operand and answer of the arithmetic setting) is added as one token, so a number is always one token wherever
it stands (longer digit runs split leftmost-longest, e.g. "2024" -> "202" "4"). A tiny model learns an
arithmetic fact as one prediction instead of a chain of digits: see the README for the measured effect.

The output is bit-identical on rerun: the training texts are fed in a fixed order and the Rayon
thread pool of ``tokenizers`` is limited to one thread (set before ``tokenizers`` is imported).

Usage::

    uv run python scripts/train_tokenizer.py [--vocab-size 2048] [--max-number 400]
"""

from __future__ import annotations

import os

os.environ["RAYON_NUM_THREADS"] = "1"  # must precede the tokenizers import: deterministic training
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse
import hashlib
import json
import lzma
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPORA = REPO_ROOT / "src" / "undo" / "data" / "corpora"
DEFAULT_OUT = REPO_ROOT / "src" / "undo" / "data" / "tokenizer" / "tokenizer.json"
SPECIAL_TOKENS = ["<pad>", "<|endoftext|>"]


def load_docs(lang: str, split: str, corpora: Path = CORPORA) -> list[str]:
    with lzma.open(corpora / f"libreoffice_{lang}.jsonl.xz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return [r["text"] for r in rows if r["split"] == split]


def nbytes(text: str) -> int:
    return len(text.encode("utf-8"))


def balanced_sample(ko_docs: list[str], en_docs: list[str]) -> tuple[list[str], list[str]]:
    """All Korean docs; English docs in order until their UTF-8 size matches the Korean one."""
    target = sum(nbytes(d) for d in ko_docs)
    en_sample: list[str] = []
    total = 0
    for doc in en_docs:
        size = nbytes(doc)
        if total + size <= target:
            en_sample.append(doc)
            total += size
            continue
        # cut the last document at a paragraph boundary so that the byte count does not overshoot
        kept: list[str] = []
        for para in doc.split("\n"):
            extra = nbytes(para) + (1 if kept else 0)
            if total + extra > target:
                break
            kept.append(para)
            total += extra
        if kept:
            en_sample.append("\n".join(kept))
        break
    return ko_docs, en_sample


def hangul_syllables(text: str) -> int:
    return sum(1 for c in text if "\uac00" <= c <= "\ud7a3")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vocab-size", type=int, default=2048, help="BPE entries, before the number tokens")
    ap.add_argument("--max-number", type=int, default=400, help="whole numbers 10..N become single tokens (0: none)")
    ap.add_argument("--corpora", type=Path, default=CORPORA, help="folder with libreoffice_{en,ko}.jsonl.xz")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)

    ko_train, en_train = balanced_sample(load_docs("ko", "train", args.corpora), load_docs("en", "train", args.corpora))
    ko_bytes, en_bytes = sum(map(nbytes, ko_train)), sum(map(nbytes, en_train))
    print(f"training sample: ko {len(ko_train)} docs {ko_bytes} bytes; en {len(en_train)} docs {en_bytes} bytes")
    # Fixed interleaving order of the two languages (the order only matters for reproducibility).
    texts = ko_train + en_train

    tok = Tokenizer(models.BPE())
    # Digits never merge with other characters: an arithmetic prompt ending in "= " is then a token prefix of
    # "= 84", and a number's tokens do not depend on its neighbours.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=args.vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(iter(texts), trainer=trainer, length=len(texts))
    for i, special in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(special) == i, (special, tok.token_to_id(special))
    tok.add_tokens([AddedToken(str(n), normalized=False) for n in range(10, args.max_number + 1)])

    args.out.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(args.out))
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, vocab {tok.get_vocab_size()}) sha256 {digest}")

    # Evaluate the saved file, as users will load it.
    tok = Tokenizer.from_file(str(args.out))
    for lang in ("en", "ko"):
        docs = load_docs(lang, "validation", args.corpora)
        n_tokens = n_chars = 0
        for doc, enc in zip(docs, tok.encode_batch(docs, add_special_tokens=False), strict=False):
            n_tokens += len(enc.ids)
            n_chars += len(doc)
            assert tok.decode(enc.ids) == doc, f"round-trip failed on a {lang} validation document"
        print(f"{lang} validation: {n_tokens} tokens / {n_chars} chars = {n_tokens / n_chars:.3f} tokens per char")
    hangul_tokens = sum(1 for t in tok.get_vocab() if hangul_syllables(tok.decoder.decode([t])))
    print(f"vocab entries containing a Hangul syllable: {hangul_tokens} / {tok.get_vocab_size()}")


if __name__ == "__main__":
    main()
