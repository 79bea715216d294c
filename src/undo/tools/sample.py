"""Talking to checkpoints: load any finished run's model (named as the stages name runs, or a folder) and stream
a completion, for one model or the same prompt through several side by side."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from undo.errors import UserError
from undo.evaluate.generation import prompt_ids
from undo.experiment import Experiment
from undo.model.models import load_model


@dataclass(frozen=True)
class Sampling:
    max_new_tokens: int = 64
    temperature: float = 0.8
    top_p: float = 0.95
    greedy: bool = False
    seed: int = 0

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise UserError(f"--max-new-tokens must be >= 1, got {self.max_new_tokens}")
        if not self.greedy and not self.temperature > 0:
            raise UserError(f"--temperature must be > 0 (or use --greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise UserError(f"--top-p must be in (0, 1], got {self.top_p}")


def model_folder(exp: Experiment, name: str) -> Path:
    """A run reference ("distill/undo-maxent-a0.6-s0", "unlearn/selected:maxent") or a folder holding a saved
    model (or a run folder with model/ inside)."""
    path = Path(name)
    if path.is_dir():
        folder = path / "model" if (path / "model" / "config.json").is_file() else path
        if not (folder / "config.json").is_file():
            raise UserError(f"{path} holds no saved model (no config.json): name a run or a model folder")
        return folder
    if "/" not in name or name.count("/") > 1:
        raise UserError(f"{name!r} is neither a folder nor a run reference like 'distill/full-maxent'")
    folder = exp.finished(name) / "model"
    if not (folder / "config.json").is_file():
        raise UserError(f"run {name!r} kept no model (relearning runs save one only with save_model)")
    return folder


def load(exp: Experiment, name: str):
    """(model in eval mode, tokenizer) of a run or folder."""
    from transformers import AutoTokenizer  # heavy: imported where a model is loaded

    folder = model_folder(exp, name)
    return load_model(folder, fix=f"check {folder}").eval(), AutoTokenizer.from_pretrained(folder)


def complete(model, tokenizer, prompt: str, sampling: Sampling, out=None) -> str:
    """Stream the continuation of `prompt` to `out` (default: stdout) as it is generated; returns it."""
    from transformers import TextStreamer  # heavy: imported where a model generates

    out = out or sys.stdout

    class Printer(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False):
            out.write(text)
            out.flush()

    if not prompt.strip():
        raise UserError("the prompt is empty: type some text")
    ids = torch.tensor([prompt_ids(tokenizer, prompt)])
    torch.manual_seed(sampling.seed)  # the same random stream for every model of a side-by-side comparison
    options = dict(do_sample=False) if sampling.greedy else dict(do_sample=True, temperature=sampling.temperature)
    if not sampling.greedy:
        options["top_p"] = sampling.top_p
    with torch.no_grad():
        generated = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=sampling.max_new_tokens,
            streamer=Printer(tokenizer, skip_prompt=True, skip_special_tokens=True),
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            use_cache=True,
            **options,
        )
    out.write("\n")
    return tokenizer.decode(generated[0, ids.shape[1] :], skip_special_tokens=True)


def side_by_side(models: dict[str, tuple], prompt: str, sampling: Sampling, out=None) -> dict[str, str]:
    """The same prompt through each model, one after another, each under its name."""
    out = out or sys.stdout
    answers = {}
    for name, (model, tokenizer) in models.items():
        out.write(f"--- {name}\n{prompt}")
        out.flush()
        answers[name] = complete(model, tokenizer, prompt, sampling, out)
    return answers
