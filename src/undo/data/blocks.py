"""Token blocks on disk: `ids.bin` (+ `mask.bin` when some tokens carry no loss) and `meta.json`, memory-mapped.

meta.json carries a checksum of itself and the byte size of each data file, so a damaged entry (a truncated
file, an edited or corrupt meta.json) is detected when loaded rather than read as wrong tokens.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from undo.io.files import temporary


class DamagedBlocks(Exception):
    """A cache entry that does not match its metadata (the cache rebuilds it)."""


@dataclass
class TokenBlocks:
    """N blocks of L token ids, with a loss mask (None = every token is a target)."""

    ids: np.ndarray
    mask: np.ndarray | None
    meta: dict

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def n_tokens(self) -> int:
        return int(self.ids.size)

    def head(self, n: int | None) -> TokenBlocks:
        """The first n blocks (all when n is None): a deterministic subset for cheaper evaluations."""
        if n is None or n >= len(self):
            return self
        return TokenBlocks(self.ids[:n], None if self.mask is None else self.mask[:n], self.meta)


def _checksum(meta: dict) -> str:
    body = {k: v for k, v in meta.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def verify(folder: Path) -> dict:
    """The entry's metadata once its checksum and file sizes check out; else DamagedBlocks saying why."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DamagedBlocks(f"meta.json unreadable ({type(err).__name__})") from None
    if not isinstance(meta, dict) or meta.get("checksum") != _checksum(meta):
        raise DamagedBlocks("meta.json does not match its checksum")
    for name, size in meta["file_bytes"].items():
        path = folder / name
        actual = path.stat().st_size if path.is_file() else None
        if actual != size:
            raise DamagedBlocks(f"{name} has {actual} bytes, its metadata says {size}")
    return meta


def load_blocks(folder: Path) -> TokenBlocks:
    meta = verify(folder)
    shape = (meta["n_blocks"], meta["block_len"])
    ids = np.memmap(folder / "ids.bin", dtype=meta["dtype"], mode="r", shape=shape) if shape[0] else np.zeros(shape)
    mask = None
    if meta["has_mask"]:
        mask = np.memmap(folder / "mask.bin", dtype=np.bool_, mode="r", shape=shape)
    return TokenBlocks(ids, mask, meta)


class BlockWriter:
    """Streams blocks into a temporary folder and renames it into place on `close`, so a cache entry is
    either complete or absent."""

    def __init__(self, folder: Path, block_len: int, vocab_size: int):
        self.folder = folder
        self.tmp = temporary(folder)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        self.block_len = block_len
        self.dtype = np.uint16 if vocab_size <= np.iinfo(np.uint16).max + 1 else np.uint32
        self._ids = open(self.tmp / "ids.bin", "wb")
        self._mask = open(self.tmp / "mask.bin", "wb")
        self.n_blocks = 0
        self.has_mask = False

    def write(self, ids: np.ndarray, mask: np.ndarray) -> None:
        self._ids.write(ids.astype(self.dtype).tobytes())
        self._mask.write(mask.astype(np.bool_).tobytes())
        self.has_mask |= not bool(mask.all())
        self.n_blocks += len(ids)

    def close(self, meta: dict) -> TokenBlocks:
        self._ids.close()
        self._mask.close()
        if not self.has_mask:
            (self.tmp / "mask.bin").unlink()
        files = ["ids.bin", "mask.bin"] if self.has_mask else ["ids.bin"]
        meta = {
            **meta,
            "n_blocks": self.n_blocks,
            "block_len": self.block_len,
            "dtype": np.dtype(self.dtype).name,
            "has_mask": self.has_mask,
            "file_bytes": {name: (self.tmp / name).stat().st_size for name in files},
        }
        meta["checksum"] = _checksum(meta)
        (self.tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        shutil.rmtree(self.folder, ignore_errors=True)
        os.replace(self.tmp, self.folder)
        return load_blocks(self.folder)

    def abort(self) -> None:
        self._ids.close()
        self._mask.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
