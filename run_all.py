"""The whole pipeline for one setting and scale: prepare, pretrain, unlearn, distill, relearn, evaluate.

    python run_all.py                          # embedded language default: ~16 minutes on a 2-core CPU
    python run_all.py --scale smoke            # every stage on a micro model in seconds (a wiring check)
    python run_all.py --scale paper            # the paper's grids on all visible GPUs

Finished runs are skipped, so an interrupted pipeline resumes where it stopped.
"""

from __future__ import annotations

import json
import sys
import time

import run_distill
import run_eval
import run_prepare
import run_pretrain
import run_relearn
import run_unlearn
from undo.cli import guarded, parser
from undo.experiment import Experiment

STAGES = [
    ("prepare", run_prepare),
    ("pretrain", run_pretrain),
    ("unlearn", run_unlearn),
    ("distill", run_distill),
    ("relearn", run_relearn),
    ("eval", run_eval),
]


def main(argv: list[str] | None = None) -> int:
    argv = list(argv or [])
    args = parser(__doc__.splitlines()[0]).parse_args(argv)  # validate before starting anything
    timings = []
    for name, module in STAGES:
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        code = module.main(argv)
        timings.append((name, time.perf_counter() - start))
        if code:
            print(f"stage {name} failed (exit code {code}); fix it and rerun: finished runs are kept")
            return code
    print(
        "\nwall time per stage: "
        + ", ".join(f"{n} {s:.0f}s" for n, s in timings)
        + f"; total {sum(s for _, s in timings):.0f}s"
    )
    exp = Experiment(args.setting, args.scale, args.out)
    (exp.root / "results" / "timings.json").write_text(json.dumps(dict(timings), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    guarded(lambda: main(sys.argv[1:]))
