"""Evaluate and report: read the output tree, write results/results.{json,md} and the figures, log to wandb.

python run_eval.py                                     # embedded language results
python run_eval.py --setting language --scale paper
"""

from __future__ import annotations

import sys

from undo.cli import experiment, guarded, parser
from undo.reporting.dashboard import log_report
from undo.reporting.figures import draw_all
from undo.reporting.report import collect, markdown, write


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    exp = experiment(args)
    if args.dry_run:
        print(f"would report the finished runs under {exp.root} into {exp.root / 'results'}")
        return 0
    results = collect(exp)
    if not results["models"]:
        print(f"no finished runs under {exp.root}: run the stages first (python run_all.py)")
        return 1
    paths = write(exp, results)
    figures = draw_all(results, exp.root / "results")
    log_report(
        results,
        markdown(results),
        figures,
        name=f"{exp.setting.name}/{exp.scale.name}/report",
        wandb_dir=exp.wandb_dir,
        mode=args.wandb,
    )
    print(markdown(results))
    print(f"tables:  {paths['markdown']}\n         {paths['json']}")
    print("figures: " + "\n         ".join(str(p) for p in figures))
    return 0


if __name__ == "__main__":
    guarded(lambda: main(sys.argv[1:]))
