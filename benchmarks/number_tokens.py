"""The embedded tokenizer's number tokens against digits one by one: how fast a tiny model learns x/÷ facts.

    uv run python benchmarks/number_tokens.py [--steps 400] [--eval-every 100] [--lr 1e-2]

The same tiny Gemma-2 model, data (the training equations of x and ÷, answer-only loss), optimiser and seed,
once with the shipped tokenizer (each whole number 10..400 one token) and once with the same BPE without the
number tokens (digits one by one, as Gemma's tokenizer splits them). Prints equation accuracy on the held-out
evaluation items as training goes.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from accelerate import Accelerator
from transformers import PreTrainedTokenizerFast

from undo.data.arithmetic import evaluation_items, training_items
from undo.data.blocks import TokenBlocks
from undo.data.packing import pack
from undo.data.prepare import encode_documents
from undo.data.sampling import Mixture
from undo.data.tokenizer import embedded_tokenizer_file, load_tokenizer
from undo.evaluate.arithmetic import MAX_NEW_TOKENS, is_correct
from undo.evaluate.generation import greedy_continuations
from undo.model.models import build_model
from undo.params import Optim
from undo.training.loop import Evaluation, train
from undo.training.objectives import LanguageModeling


def digits_only():
    """The shipped tokenizer without its number tokens: the plain BPE, digits one by one."""
    from tokenizers import Tokenizer

    spec = json.loads(embedded_tokenizer_file().read_text())
    spec["added_tokens"] = [t for t in spec["added_tokens"] if t["special"]]
    backend = Tokenizer.from_str(json.dumps(spec))
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<|endoftext|>")


def run(tokenizer, label: str, args) -> None:
    docs = [item.qa for item in training_items(["mul", "div"], 40_000, 0)]
    ids, mask, _ = pack(encode_documents(tokenizer.backend_tokenizer, docs), 128, tokenizer.eos_token_id)
    data = Mixture({"muldiv": TokenBlocks(ids, mask, {})}, {"muldiv": 1.0}, batch_size=16, seed=0)
    items = [i for i in evaluation_items(["mul", "div"]) if i.format == "eq"]
    prompts = [tokenizer(i.qa.prompt, add_special_tokens=False)["input_ids"] for i in items]

    def accuracy(model):
        texts = greedy_continuations(model, prompts, tokenizer, max_new_tokens=MAX_NEW_TOKENS, batch_size=200)
        correct = [is_correct(text, item.value, tokenizer.eos_token) for text, item in zip(texts, items, strict=True)]
        return {"eq_acc": float(np.mean(correct))}

    model = build_model("tiny", tokenizer, seed=0)
    start = time.perf_counter()
    result = train(
        model,
        LanguageModeling(),
        {"train": data},
        Optim(lr=args.lr, warmup=20, steps=args.steps),
        accelerator=Accelerator(cpu=True),
        evaluation=Evaluation(accuracy, every=args.eval_every),
        desc=label,
    )
    curve = "  ".join(f"{e['step']}:{e['eq_acc']:.2f}" for e in result.evals)
    print(f"{label:8} vocab {len(tokenizer)}, {ids.size / len(docs):.1f} tokens per equation, "
          f"{time.perf_counter() - start:.0f} s; x/÷ equation accuracy by step  {curve}")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-2)
    args = p.parse_args()
    run(load_tokenizer("embedded"), "numbers", args)
    run(digits_only(), "digits", args)


if __name__ == "__main__":
    main()
