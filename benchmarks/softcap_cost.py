"""What Gemma-2's two soft-caps (attention scores capped at 50, output logits at 30: c * tanh(x / c)) cost an
embedded model on a CPU, and what computing them through sigmoid (undo.model.softcap: tanh(y) = 2 sigmoid(2y) - 1, the
toolkit's way) wins back: torch's tanh against sigmoid on a logits-sized tensor, and a distillation step and an
evaluation forward of the tiny model with the soft-caps as transformers computes them, as the toolkit does, and off.

    uv run python benchmarks/softcap_cost.py [--rounds 4] [--steps 5]

With them off, eager attention can also hand over to SDPA, so that is measured too. Rounds alternate over every
variant in one process (this machine drifts from hour to hour); the medians are printed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from undo.experiment import Experiment
from undo.model import losses
from undo.model.heads import predictions
from undo.model.models import build_model
from undo.model.softcap import soft_cap
from undo.runner.allocator import keep_freed_memory

BATCH = 16
VARIANTS = ("tanh (transformers)", "through sigmoid (undo)", "no soft-caps", "no soft-caps, SDPA")


def uncapped(model, attention: str):
    """`model` without its soft-caps, attention through `attention`."""
    model.config.final_logit_softcapping = None
    model.config.attn_logit_softcapping = None
    for layer in model.model.layers:
        layer.self_attn.attn_logit_softcapping = None
    # set_attn_implementation refuses SDPA for Gemma-2 (whose soft-cap SDPA cannot apply): set it underneath
    model.config._attn_implementation = attention
    return model


def mean_ms(fn, steps: int) -> float:
    """Milliseconds per call of `fn`, over `steps` calls."""
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return 1000 * (time.perf_counter() - start) / steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--steps", type=int, default=5)
    args = p.parse_args()
    keep_freed_memory()
    exp = Experiment("language", "embedded")
    shape = (BATCH, exp.scale.seq_len)
    ids = torch.randint(len(exp.tokenizer), shape, generator=torch.Generator().manual_seed(0))
    every = torch.ones_like(ids, dtype=torch.bool)
    logits_sized = torch.randn(BATCH * exp.scale.seq_len, len(exp.tokenizer))

    def pair(variant: str):
        models = [build_model("tiny", exp.tokenizer, seed=seed) for seed in (0, 1)]
        if variant == VARIANTS[0]:
            for model in models:
                model.config._attn_implementation = "eager"
        elif variant != VARIANTS[1]:
            models = [uncapped(m, "sdpa" if "SDPA" in variant else "eager") for m in models]
        student, teacher = models
        return student, teacher.eval().requires_grad_(False), torch.optim.AdamW(student.parameters(), lr=1e-3)

    setups = {variant: pair(variant) for variant in VARIANTS}

    def logits(variant: str, model, input_ids: torch.Tensor) -> torch.Tensor:
        """The toolkit's runs compute the logits outside the model's forward, to soft-cap them through sigmoid."""
        return predictions(model, input_ids) if variant == VARIANTS[1] else model(input_ids=input_ids).logits

    def step(variant: str) -> None:
        student, teacher, optimizer = setups[variant]
        with torch.no_grad():
            reference = logits(variant, teacher, ids)
        losses.forward_kl(reference, logits(variant, student, ids), every).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def evaluation(variant: str) -> None:  # one forward of 32 blocks, as the evaluations batch them
        with torch.inference_mode():
            logits(variant, setups[variant][1], torch.cat([ids, ids]))

    ops = {
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "exp": torch.exp,
        "30 tanh(x / 30)": lambda x: torch.tanh(x / 30) * 30,
        "soft_cap(x, 30)": lambda x: soft_cap(x, 30.0),
    }
    cases = {("op", name): (lambda op=op: op(logits_sized), 4 * args.steps) for name, op in ops.items()}
    for variant in VARIANTS:
        for kind, fn in (("step", step), ("eval", evaluation)):
            cases[kind, variant] = (lambda fn=fn, variant=variant: fn(variant), args.steps)
    times: dict[tuple[str, str], list[float]] = {}
    for round_ in range(args.rounds + 1):  # the first round warms up
        for key, (fn, calls) in cases.items():
            ms = mean_ms(fn, calls)
            if round_:
                times.setdefault(key, []).append(ms)
    med = {key: statistics.median(values) for key, values in times.items()}
    rows, cols = logits_sized.shape
    print(f"{torch.get_num_threads()} threads; elementwise on {rows} x {cols} fp32 (the embedded logits of one batch):")
    for name in ops:
        print(f"  {name:>15}: {med['op', name]:6.2f} ms")
    print(
        f"tiny model, batch {BATCH} x {exp.scale.seq_len}: distillation step (teacher forward, student step)"
        " | evaluation forward of 32 blocks"
    )
    capped_step, capped_eval = med["step", VARIANTS[0]], med["eval", VARIANTS[0]]
    for variant in VARIANTS:
        s, e = med["step", variant], med["eval", variant]
        print(f"  {variant:>23}: {s:6.1f} ms ({capped_step / s:.2f}x) | {e:6.1f} ms ({capped_eval / e:.2f}x)")


if __name__ == "__main__":
    main()
