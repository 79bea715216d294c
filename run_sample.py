"""Sample from any checkpoint: a completion of a prompt, or an interactive loop without one.

    python run_sample.py distill/undo-maxent-a0.6-s0 --prompt "The function returns"
    python run_sample.py pretrain/base unlearn/selected:maxent distill/full-maxent --prompt "..."   # side by side
    python run_sample.py path/to/model/folder                                   # interactive: one prompt a line

Models are named as the stages name runs (in --setting/--scale/--out) or given as folders. Tokens are streamed as
they are generated; --greedy decodes deterministically, else temperature and top-p sampling with --seed (the
same seed for every model of a side-by-side comparison).
"""

from __future__ import annotations

import argparse
import sys

from undo.cli import guarded
from undo.experiment import Experiment
from undo.tools.sample import Sampling, load, side_by_side


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", help="run references (e.g. pretrain/base) or model folders")
    p.add_argument("--prompt", help="the text to continue (default: read prompts interactively)")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--greedy", action="store_true", help="always the most likely token (no sampling)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--setting", default="language")
    p.add_argument("--scale", default="embedded")
    p.add_argument("--out", default="outputs")
    args = p.parse_args(argv)
    sampling = Sampling(args.max_new_tokens, args.temperature, args.top_p, args.greedy, args.seed)
    exp = Experiment(args.setting, args.scale, args.out)
    models = {name: load(exp, name) for name in args.models}
    if args.prompt is not None:
        side_by_side(models, args.prompt, sampling)
        return 0
    print("one prompt per line; an empty line or Ctrl-D ends", file=sys.stderr)
    for line in sys.stdin:
        prompt = line.rstrip("\n")
        if not prompt:
            break
        side_by_side(models, prompt, sampling)
    return 0


if __name__ == "__main__":
    guarded(lambda: main(sys.argv[1:]))
