"""Seconds to build a block-cache entry against loading (and verifying) it from the cache.

    uv run python benchmarks/block_cache.py [--corpus libreoffice_ko] [--split train] [--repeat 5]

Loading verifies the entry against its metadata (checksum of meta.json, byte size of each file) before
memory-mapping it, so this also shows what the verification costs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from undo.data.prepare import prepared_blocks


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default="libreoffice_ko")
    p.add_argument("--split", default="train")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    source = {"kind": "embedded", "name": args.corpus}
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        blocks = prepared_blocks(source, "embedded", 128, args.split, cache)
        build = time.perf_counter() - start
        loads = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            prepared_blocks(source, "embedded", 128, args.split, cache)
            loads.append(time.perf_counter() - start)
    print(f"{args.corpus} {args.split}: {len(blocks)} blocks of 128 tokens")
    print(f"build {build:.3f}s, cached load {statistics.median(loads) * 1000:.1f} ms (median of {args.repeat})")


if __name__ == "__main__":
    main()
