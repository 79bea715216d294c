"""Where an embedded distillation step's time goes: the teacher's forward, the student's decoder (forward, backward,
AdamW) and the whole step, in fp32 and under bf16 autocast.

    uv run python benchmarks/step_breakdown.py [--rounds 6] [--steps 5] [--preset tiny] [--batch-size 16]

The whole step is what `undo.training.objectives.Distillation` trains: the frozen teacher's logits, the student's
logits, forward KL, backward, AdamW. The decoder alone stands in a loss on its final hidden states for the output head,
so whole step - teacher - decoder is the student's head and the loss. Rounds of `--steps` steps alternate over
every part and precision in one process (this machine drifts from hour to hour); the medians are printed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from undo.experiment import Experiment
from undo.model import losses
from undo.model.models import build_model
from undo.runner.allocator import keep_freed_memory


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--preset", default="tiny")
    p.add_argument("--batch-size", type=int, default=16)
    args = p.parse_args()
    keep_freed_memory()
    exp = Experiment("language", "embedded")
    student = build_model(args.preset, exp.tokenizer, seed=0)
    teacher = build_model(args.preset, exp.tokenizer, seed=1).eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(len(exp.tokenizer), (args.batch_size, exp.scale.seq_len), generator=generator)
    every = torch.ones_like(ids, dtype=torch.bool)

    def update(loss: torch.Tensor) -> None:
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def whole_step():
        with torch.no_grad():
            reference = teacher(input_ids=ids).logits
        update(losses.forward_kl(reference, student(input_ids=ids).logits, every))

    def teacher_forward():
        with torch.no_grad():
            teacher(input_ids=ids)

    def student_decoder():
        update(student.model(input_ids=ids).last_hidden_state.square().mean())

    parts = {"whole step": whole_step, "teacher forward": teacher_forward, "student decoder": student_decoder}
    times: dict[tuple[str, str], list[float]] = {}
    for round_ in range(args.rounds + 1):  # the first round warms up
        for name, part in parts.items():
            for precision in ("fp32", "bf16"):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                    start = time.perf_counter()
                    for _ in range(args.steps):
                        part()
                if round_:
                    times.setdefault((name, precision), []).append((time.perf_counter() - start) / args.steps)
    ms = {key: 1000 * statistics.median(values) for key, values in times.items()}
    threads = torch.get_num_threads()
    print(f"model {args.preset}, batch {args.batch_size} x {exp.scale.seq_len} tokens, {threads} threads")
    for name in parts:
        print(f"{name:>16}: fp32 {ms[name, 'fp32']:6.1f} ms, bf16 autocast {ms[name, 'bf16']:6.1f} ms (medians)")
    for precision in ("fp32", "bf16"):
        rest = ms["whole step", precision] - ms["teacher forward", precision] - ms["student decoder", precision]
        print(f"student head and loss, {precision}: {rest:.1f} ms")


if __name__ == "__main__":
    main()
