"""Where the embedded pipeline's time goes: run_all.py under cProfile, per stage and per kind of operation.

    uv run python benchmarks/pipeline_profile.py [--setting language] [--out /tmp/profile] [-- run_all options]

Runs the whole pipeline into a fresh tree (cProfile adds a few percent; the stage times run_all prints are the
profiled ones) and prints, for the profile, the time inside each part of a job: training steps, evaluations,
loading and saving models, data, tracking (wandb, JSONL) and the rest; and the torch operations that took longest.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import run_all

# Each part of a job, by the function whose cumulative time it is (file fragment, function name).
PARTS = {
    "training steps": ("undo/training/loop.py", "step"),
    "evaluations, all": ("undo/evaluate/tasks.py", "evaluate"),
    "evaluations during training": ("undo/training/loop.py", "measure"),
    "loading models": ("undo/experiment.py", "load_model"),
    "saving models": ("undo/stages/common.py", "save"),
    "data streams": ("undo/stages/common.py", "mixture"),
    "block cache": ("undo/data/prepare.py", "prepared_blocks"),
    "tracking, start": ("undo/runs/tracking.py", "start_wandb"),
    "tracking, records": ("undo/runs/tracking.py", "log"),
    "tracking, finish": ("undo/runs/tracking.py", "finish"),
}


def cumulative(stats: pstats.Stats, fragment: str, name: str) -> float:
    """The cumulative seconds of the functions `name` in files ending with `fragment` (outermost calls only)."""
    return sum(entry[3] for (path, _, func), entry in stats.stats.items() if path.endswith(fragment) and func == name)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--setting", default="language")
    p.add_argument("--out", default="/tmp/pipeline-profile")
    p.add_argument("--top", type=int, default=15, help="torch operations to list")
    args, rest = p.parse_known_args(argv)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    profile = cProfile.Profile()
    code = profile.runcall(run_all.main, ["--setting", args.setting, "--out", str(out / "tree"), *rest])
    if code:
        raise SystemExit(code)
    profile.dump_stats(out / "pipeline.prof")
    stats = pstats.Stats(profile)
    total = stats.total_tt
    print(f"\nprofiled {total:.0f} s (pstats: {out / 'pipeline.prof'})")
    print("| part of a job | seconds | share |\n|---|---|---|")
    for part, (fragment, name) in PARTS.items():
        seconds = cumulative(stats, fragment, name)
        print(f"| {part} | {seconds:.1f} | {100 * seconds / total:.1f}% |")
    print("\n| torch operation (own time) | calls | seconds | share |\n|---|---|---|---|")
    ops = [
        (entry[2], entry[0], func)
        for (path, _, func), entry in stats.stats.items()
        if path == "~" and ("torch" in func or "method" in func)
    ]
    for seconds, calls, func in sorted(ops, reverse=True)[: args.top]:
        print(f"| {func} | {calls} | {seconds:.1f} | {100 * seconds / total:.1f}% |")


if __name__ == "__main__":
    main(sys.argv[1:])
