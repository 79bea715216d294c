"""Items/s of batched greedy answering against one prompt at a time, on the same evaluation items.

    uv run python benchmarks/generation_speed.py [--items 400] [--batch-size 200] [--model PATH]

Uses the arithmetic evaluation problems (100 equations + 100 word problems of x and ÷ by default: 400 items),
up to 4 new tokens each, on the embedded-scale model (a fresh one, or a saved run with --model). Both paths
must give the same answers; the benchmark says so and reports the speed-up.
"""

from __future__ import annotations

import argparse
import time

from undo.data.arithmetic import evaluation_items
from undo.data.tokenizer import load_tokenizer
from undo.evaluate.arithmetic import MAX_NEW_TOKENS
from undo.evaluate.generation import greedy_continuations, prompt_ids
from undo.model.models import build_model, load_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=400)
    p.add_argument("--batch-size", type=int, default=200)
    p.add_argument("--model", help="a saved model folder (default: a freshly initialised tiny model)")
    args = p.parse_args()
    tokenizer = load_tokenizer("embedded")
    model = (load_model(args.model) if args.model else build_model("tiny", tokenizer, seed=0)).eval()
    items = evaluation_items(["mul", "div"])[: args.items]
    prompts = [prompt_ids(tokenizer, i.qa.prompt) for i in items]
    run = dict(tokenizer=tokenizer, max_new_tokens=MAX_NEW_TOKENS)
    greedy_continuations(model, prompts[:8], batch_size=8, **run)  # warm-up
    start = time.perf_counter()
    batched = greedy_continuations(model, prompts, batch_size=args.batch_size, **run)
    batched_s = time.perf_counter() - start
    start = time.perf_counter()
    single = [greedy_continuations(model, [prompt], **run)[0] for prompt in prompts]
    single_s = time.perf_counter() - start
    same = sum(a == b for a, b in zip(batched, single, strict=True))
    print(f"{len(prompts)} items, up to {MAX_NEW_TOKENS} new tokens each")
    print(f"batched ({args.batch_size} per call): {len(prompts) / batched_s:8.1f} items/s ({batched_s:.2f} s)")
    print(f"one at a time:          {len(prompts) / single_s:8.1f} items/s ({single_s:.2f} s)")
    print(f"speed-up x{single_s / batched_s:.1f}; identical answers: {same}/{len(prompts)}")


if __name__ == "__main__":
    main()
