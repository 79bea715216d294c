"""Prepare data: tokenize and pack every corpus of a setting into the on-disk block cache.

python run_prepare.py                                  # embedded language data (seconds)
python run_prepare.py --setting language --scale paper # FineWeb-Edu + FineWeb-2 Korean from the hub
"""

from __future__ import annotations

import sys

from undo.cli import experiment, guarded, parser
from undo.stages.prepare import cached, prepare


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    exp = experiment(args)
    if args.dry_run:
        for domain in exp.domains:
            for split in ("train", "validation"):
                print(f"{'cached' if cached(exp, domain, split) else 'todo':6} {domain} {split}")
        return 0
    print(f"{'domain':8} {'split':10} {'documents':>9} {'blocks':>8} {'tokens':>11} {'unigram H':>9} {'seconds':>7}")
    for row in prepare(exp):
        print(
            f"{row['domain']:8} {row['split']:10} {row['documents']:9d} {row['blocks']:8d} {row['tokens']:11d} "
            f"{row['unigram_entropy']:9.3f} {row['seconds']:7.2f}"
        )
    print(f"blocks of {exp.scale.seq_len} tokens cached under {exp.cache_root}")
    return 0


if __name__ == "__main__":
    guarded(lambda: main(sys.argv[1:]))
