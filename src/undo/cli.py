"""The command line shared by the run_*.py scripts: pick setting and scale, then launch that grid."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from undo.errors import UserError
from undo.experiment import Experiment
from undo.runner.cluster import LAUNCHERS, Cluster
from undo.runner.jobs import Job
from undo.runner.launch import launch
from undo.runner.shrink import REHEARSAL, SMOKE, one_of_each, shrink, write_rehearsal_inputs
from undo.runs.tracking import WANDB_MODES
from undo.settings import SCALES, get_setting
from undo.training.loop import Interrupted

Grids = dict[tuple[str, str], list[Job]]


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--setting", default="language", help="language (default), arithmetic, wmdp, wmdp-bio, wmdp-cyber")
    p.add_argument(
        "--scale",
        default="embedded",
        help=f"one of {SCALES}: embedded = CPU-sized with shipped data; rehearsal = the paper grids cut to two "
        "steps, run on a CPU before GPU time is spent",
    )
    p.add_argument("--out", default="outputs", help="root of the output tree (default: outputs)")
    p.add_argument("--force", action="store_true", help="rerun every job, finished or not")
    p.add_argument(
        "--rerun-stale",
        action="store_true",
        help="rerun finished runs whose config or inputs changed (without it, such runs stop the launch)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="list the jobs (done, todo, stale, waiting); write nothing, run nothing"
    )
    p.add_argument("--only", help="run only jobs whose name or stage/name matches this glob, e.g. 'maxent-*'")
    p.add_argument("--seed", type=int, default=0, help="added to every job's seed: a whole replicate of the grid")
    p.add_argument(
        "--variants",
        action="store_true",
        help="add the grids beyond the paper: distillation variants, the embedding-reset control, attacks after resets",
    )
    p.add_argument(
        "--attacks",
        choices=("grid", "suite"),
        default="grid",
        help="grid (default): the setting's attack grid; suite: also every attack family against the key models "
        "(searched fine-tuning and LoRA, held-out facts, off-target data, few-shot, probes, quantization)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="jobs at once: this many per visible GPU (each with an equal share of its memory), or without GPUs this "
        "many in all; every job pinned to an equal share of the CPU cores",
    )
    _cluster_options(p)
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        help="save the training state every N steps so a killed run resumes (default: the scale's; 0: never)",
    )
    p.add_argument(
        "--keep-checkpoint",
        action="store_true",
        help="finished runs keep their final training state (training_state.pt: optimiser, data position, RNG)",
    )
    p.add_argument("--tokens", help="folder of hf_token.txt / wandb_token.txt (default: the project's tokens/)")
    p.add_argument(
        "--wandb",
        choices=WANDB_MODES,
        default=None,
        help="auto (default): online with a token, else offline; off: JSONL records only",
    )
    return p


def _cluster_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--launcher", default="local", help="local (default), slurm (through submitit) or submitit-local")
    p.add_argument("--partition", help="slurm: the partition to submit to")
    p.add_argument("--time-min", type=int, default=240, help="slurm: wall-clock limit per job, minutes")
    p.add_argument("--gpus-per-job", type=int, default=1, help="slurm: GPUs per job")
    p.add_argument("--cpus-per-job", type=int, default=8, help="slurm: CPU cores per job")
    p.add_argument("--array-parallelism", type=int, default=64, help="slurm: jobs of the array running at once")


def reseed(jobs: list[Job], offset: int) -> list[Job]:
    return [Job(j.stage, j.name, {**j.params, "seed": j.params.get("seed", 0) + offset}) for j in jobs]


def experiment(args: argparse.Namespace) -> Experiment:
    """The experiment the parsed arguments name; --tokens takes effect for this process and its workers."""
    if args.tokens:
        os.environ["UNDO_TOKENS_DIR"] = args.tokens
    if args.checkpoint_every is not None and args.checkpoint_every < 0:
        raise UserError(f"--checkpoint-every must be >= 0, got {args.checkpoint_every}")
    if args.workers < 1:
        raise UserError(f"--workers must be >= 1, got {args.workers}")
    if args.scale == "rehearsal" and not args.dry_run:
        write_rehearsal_inputs(get_setting(args.setting))
    return Experiment(args.setting, args.scale, args.out, args.checkpoint_every, args.keep_checkpoint)


def cluster(args: argparse.Namespace) -> Cluster | None:
    """The cluster options of the parsed arguments, None for the local launcher."""
    if args.launcher == "local":
        return None
    if args.launcher not in LAUNCHERS:
        raise UserError(f"unknown launcher {args.launcher!r}: choose one of {', '.join(LAUNCHERS)}")
    return Cluster(
        args.launcher, args.partition, args.time_min, args.gpus_per_job, args.cpus_per_job, args.array_parallelism
    )


def grid_for(
    grids: Grids,
    args: argparse.Namespace,
    variants: Grids | None = None,
    suite: Grids | None = None,
    variant_suite: Grids | None = None,
) -> list[Job]:
    """The stage's jobs for the parsed arguments; with --variants, its variant grid too (if it has variants); with
    --attacks suite, its attack suite (if it has one), and with both, the suite's attacks on variant models."""
    get_setting(args.setting).scale(args.scale)  # clear errors for unknown names first
    jobs = _pick(grids, args, "grid")
    if args.variants and variants is not None:
        jobs = jobs + _pick(variants, args, "variant grid")
    if args.attacks == "suite" and suite is not None:
        jobs = jobs + _pick(suite, args, "attack suite")
        if args.variants and variant_suite is not None:
            jobs = jobs + _pick(variant_suite, args, "variant attack suite")
    return reseed(jobs, args.seed) if args.seed else jobs


def _pick(grids: Grids, args: argparse.Namespace, what: str) -> list[Job]:
    """The scale's grid; the smoke scale cuts the embedded grid, the rehearsal the paper grid (undo.runner.shrink)."""
    attack_steps = get_setting(args.setting).scale(args.scale).attack_budgets[-1]
    if args.scale == "smoke" and (args.setting, "embedded") in grids:
        return shrink(grids[(args.setting, "embedded")], SMOKE, attack_steps)
    if args.scale == "rehearsal" and (args.setting, "paper") in grids:
        return shrink(one_of_each(grids[(args.setting, "paper")]), REHEARSAL, attack_steps)
    if (args.setting, args.scale) in grids:
        return grids[(args.setting, args.scale)]
    raise UserError(f"this stage has no {what} for --setting {args.setting} --scale {args.scale}")


def run_stage(
    description: str,
    grids: Grids,
    argv: list[str] | None = None,
    after: Callable | None = None,
    variants: Grids | None = None,
    suite: Grids | None = None,
    variant_suite: Grids | None = None,
) -> int:
    """Parse arguments, launch the chosen grid (and variant grid, attack suite), then call `after(exp)` (e.g.
    selection)."""
    args = parser(description).parse_args(argv)
    jobs = grid_for(grids, args, variants, suite, variant_suite)
    exp = experiment(args)
    failed = launch(
        exp,
        jobs,
        force=args.force,
        rerun_stale=args.rerun_stale,
        dry_run=args.dry_run,
        only=args.only,
        wandb=args.wandb,
        workers=args.workers,
        cluster=cluster(args),
    )
    if after is not None and not args.dry_run:
        after(exp)
    return 1 if failed else 0


def guarded(main: Callable[[], int]) -> None:
    """Run a script's main: user errors become one line on stderr and exit code 2, never a traceback."""
    try:
        code = main()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    except Interrupted as err:  # SIGTERM: the run's checkpoint is saved
        print(f"error: {err}", file=sys.stderr)
        code = 128 + err.signum
    sys.exit(code)
