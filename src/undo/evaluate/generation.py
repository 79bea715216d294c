"""Greedy answers for a batch of prompts at once, and reading a number from an answer.

Prompts are left-padded so every row's next token comes at the same position; the KV cache is switched on
for generation even though saved training configs switch it off.
"""

from __future__ import annotations

import math

import torch


def parse_number(text: str, stop: str | None = None) -> float | None:
    """The first whitespace-separated piece of `text` (cut at `stop`, e.g. the end-of-text token) as a number;
    None when there is none."""
    if stop:
        text = text.split(stop, 1)[0]
    pieces = text.split()
    if not pieces:
        return None
    try:
        value = float(pieces[0])
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def prompt_ids(tokenizer, text: str) -> list[int]:
    """A prompt's token ids, read as every training document is: after the end-of-text token that packing puts
    between documents (undo.data.packing). A bare prompt at position 0 is out of distribution: the same embedded
    arithmetic base model answered 0.26 / 0.32 / 0.04 / 0.94 of the + - x / equations bare and 0.53 / 0.81 / 0.97 /
    0.97 after the separator."""
    return [tokenizer.eos_token_id, *tokenizer(text, add_special_tokens=False)["input_ids"]]


def left_pad(prompts: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask), each prompt right-aligned."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
        mask[row, width - len(prompt) :] = 1
    return ids, mask


@torch.inference_mode()
def greedy_continuations(
    model, prompts: list[list[int]], tokenizer, *, max_new_tokens: int = 4, batch_size: int = 64, device="cpu"
) -> list[str]:
    """Decode up to `max_new_tokens` greedily after each prompt, `batch_size` prompts per call; returns the
    generated text of each prompt, through its first end-of-text token (kept, so the parser sees it)."""
    texts = []
    for start in range(0, len(prompts), batch_size):
        ids, mask = left_pad(prompts[start : start + batch_size], tokenizer.pad_token_id)
        out = model.generate(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            use_cache=True,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        texts += tokenizer.batch_decode([_through_eos(row, tokenizer.eos_token_id) for row in out[:, ids.shape[1] :]])
    return texts


def _through_eos(tokens: torch.Tensor, eos_id: int) -> list[int]:
    """The generated tokens up to and including the first end-of-text (a finished row is padded after it)."""
    tokens = tokens.tolist()
    return tokens[: tokens.index(eos_id) + 1] if eos_id in tokens else tokens
