"""Reproduce the embedded result over several seeds: robustness per model with its spread, and stage times.

Writes <out>/replicates.{md,json,png} (undo.reporting.replicates): mean ± std per model, budget and attacker,
and a figure with the spread.

    uv run python benchmarks/reproduce.py --seeds 0 1 2 [--setting arithmetic] [--variants] [--out outputs/reproduce]
    uv run python benchmarks/reproduce.py --attacks suite      # and the attack suite's robustness per family

Each seed is a whole replicate (`run_all.py --seed S`): its own pretraining, unlearning, distillation and
attacks, in <out>/seed-S. Finished replicates are reused, so the script can be stopped and resumed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import run_all
from undo.reporting.replicates import write


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default="outputs/reproduce")
    p.add_argument("--setting", default="language")
    p.add_argument("--workers", default="1", help="CPU jobs at once (see run_all.py --workers)")
    p.add_argument("--variants", action="store_true", help="each replicate with the grids beyond the paper")
    p.add_argument("--scale", default="embedded")
    p.add_argument("--attacks", default="grid", choices=("grid", "suite"), help="see run_all.py --attacks")
    args = p.parse_args()
    replicates, timings = [], {}
    for seed in args.seeds:
        out = Path(args.out) / f"seed-{seed}"
        argv = ["--setting", args.setting, "--scale", args.scale, "--seed", str(seed), "--out", str(out)]
        argv += ["--workers", args.workers, "--attacks", args.attacks, *(["--variants"] if args.variants else [])]
        code = run_all.main([*argv, "--wandb", "off"])
        if code:
            print(f"seed {seed} failed with exit code {code}")
            return code
        results_dir = out / args.setting / args.scale / "results"
        replicates.append(json.loads((results_dir / "results.json").read_text()))
        timings[seed] = json.loads((results_dir / "timings.json").read_text())
    paths = write(replicates, Path(args.out))
    print(f"\nseeds {args.seeds}: " + paths["markdown"].read_text())
    print(f"written: {', '.join(str(p) for p in paths.values())}")
    stages = list(next(iter(timings.values())))
    print("\nwall time per stage in seconds (a replicate resumed from finished runs shows only its re-check)")
    print("| seed | " + " | ".join(stages) + " | total |")
    print("|---" * (len(stages) + 2) + "|")
    for seed, times in timings.items():
        print(f"| {seed} | " + " | ".join(f"{times[s]:.0f}" for s in stages) + f" | {sum(times.values()):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
