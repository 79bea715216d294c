"""The whole pipeline for one setting and scale: prepare, pretrain, unlearn, distill, relearn, evaluate.

    python run_all.py                          # embedded language default: ~9-13 minutes on a 2-core CPU
    python run_all.py --scale smoke            # every stage on a micro model in seconds (a wiring check)
    python run_all.py --scale paper            # the paper's grids on all visible GPUs

Finished runs are skipped, so an interrupted pipeline resumes where it stopped; finished runs whose config or
inputs changed stop it (rerun them with --rerun-stale, which each later stage then needs too).
"""

from __future__ import annotations

import sys
import time

import run_distill
import run_eval
import run_prepare
import run_pretrain
import run_relearn
import run_unlearn
from undo.cli import cluster, experiment, grid_for, guarded, parser
from undo.errors import UserError
from undo.io.files import write_json
from undo.runner.launch import matches, validate

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
    exp = experiment(args)
    cluster(args)  # bad launcher options stop the pipeline before it starts
    grids = {
        name: grid_for(
            module.GRIDS,
            args,
            *(getattr(module, grids, None) for grids in ("VARIANTS", "SUITES", "VARIANT_SUITES")),
        )
        for name, module in STAGES
        if hasattr(module, "GRIDS")
    }
    validate(exp, [job for jobs in grids.values() for job in jobs])  # every stage's values, before any stage runs
    matching = {name: not args.only or any(matches(j, args.only) for j in jobs) for name, jobs in grids.items()}
    if args.only and not any(matching.values()):
        raise UserError(f"--only {args.only!r} matches no job of any stage: see the job names with --dry-run")
    timings = []
    for name, module in STAGES:
        print(f"\n=== {name} ===", flush=True)
        if matching.get(name) is False:
            print(f"no {name} job matches --only {args.only!r}")
            continue
        start = time.perf_counter()
        code = module.main(argv)
        timings.append((name, time.perf_counter() - start))
        if code:
            print(f"stage {name} failed (exit code {code}); fix it and rerun: finished runs are kept")
            return code
    if args.dry_run:
        return 0
    print(
        "\nwall time per stage: "
        + ", ".join(f"{n} {s:.0f}s" for n, s in timings)
        + f"; total {sum(s for _, s in timings):.0f}s"
    )
    write_json(exp.root / "results" / "timings.json", dict(timings))
    return 0


if __name__ == "__main__":
    guarded(lambda: main(sys.argv[1:]))
