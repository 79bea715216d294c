"""One setting at one scale, rooted in an output tree: data, tokenizer, devices and run folders by name.

outputs/<setting>/<scale>/<stage>/<run-name>/ holds each run; later stages name their inputs as
"<stage>/<run-name>" (or "<stage>/selected:<method>", see undo.runs.selection) and never need a hand-edited path.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from functools import cached_property
from pathlib import Path

import torch
from accelerate import Accelerator

from undo.data.blocks import TokenBlocks
from undo.data.corpora import source_fingerprint
from undo.data.prepare import prepared_blocks
from undo.data.tokenizer import load_tokenizer, tokenizer_fingerprint
from undo.errors import UserError
from undo.io.files import read_json
from undo.model.models import load_model, load_start
from undo.runs.names import START
from undo.runs.rundir import is_done
from undo.runs.selection import resolve
from undo.settings import get_setting


class Experiment:
    def __init__(
        self,
        setting: str = "language",
        scale: str = "embedded",
        out: Path | str = "outputs",
        checkpoint_every: int | None = None,
        keep_checkpoint: bool = False,
    ):
        self.setting = get_setting(setting).at(scale)
        self.scale = self.setting.scale(scale)
        self.out = Path(out)
        self.root = self.out / self.setting.name / self.scale.name
        self.checkpoint_every = self.scale.checkpoint_every if checkpoint_every is None else checkpoint_every
        self.keep_checkpoint = keep_checkpoint  # finished runs keep their final training state

    @property
    def cache_root(self) -> Path:
        return self.out / "cache" / "blocks"

    @property
    def wandb_dir(self) -> Path:
        return self.out / "wandb"

    @property
    def domains(self) -> list[str]:
        return list(self.scale.corpora)

    @cached_property
    def data_fingerprint(self) -> dict:
        """What the scale trains on, for run fingerprints (see undo.runs.identity)."""

        return {
            "model": self.scale.model,
            "tokenizer": tokenizer_fingerprint(self.scale.tokenizer),
            "seq_len": self.scale.seq_len,
            "corpora": {d: source_fingerprint(source) for d, source in self.scale.corpora.items()},
        }

    def attack_sample(self) -> Experiment:
        """This experiment evaluating on the attacks' sample (`Scale.attack_eval_blocks`): the same tree, data and
        devices, fewer validation blocks per evaluation."""
        if self.scale.attack_eval_blocks is None:
            return self
        sampled = copy.copy(self)
        sampled.scale = replace(self.scale, eval_blocks=self.scale.attack_eval_blocks)
        return sampled

    @cached_property
    def tokenizer(self):
        return load_tokenizer(self.scale.tokenizer)

    def blocks(self, domain: str, split: str, facts: dict | None = None) -> TokenBlocks:
        """A domain's token blocks; with `facts` (FactSplit.source), of that part of its facts only."""
        if domain not in self.scale.corpora:
            raise UserError(f"unknown domain {domain!r} for setting {self.setting.name!r}: choose from {self.domains}")
        source = self.scale.corpora[domain] if facts is None else {**self.scale.corpora[domain], "facts": facts}
        return prepared_blocks(source, self.scale.tokenizer, self.scale.seq_len, split, self.cache_root)

    @cached_property
    def accelerator(self):
        # cpu=True lets processes started by torchrun without GPUs join one data-parallel group (gloo)
        gpu = torch.cuda.is_available()
        return Accelerator(cpu=not gpu, mixed_precision="bf16" if gpu else "no")

    def scratch_folders(self) -> list[Path]:
        """Where killed processes can leave temporary files: stage and results folders, checkpoints, the cache."""
        stages = [d for d in self.root.iterdir() if d.is_dir()] if self.root.is_dir() else []
        checkpoints = [c for d in stages for c in d.glob(".*.ckpt")]
        return [*stages, *checkpoints, self.cache_root]

    def run_dir(self, ref: str) -> Path:
        """The folder of run "<stage>/<name>"."""
        stage, _, name = ref.partition("/")
        if not stage or not name:
            raise UserError(f"run reference {ref!r} must look like '<stage>/<run-name>', e.g. 'pretrain/base'")
        return self.root / stage / name

    def command(self, stage: str) -> str:
        """The command line that runs `stage` of this experiment."""
        out = "" if self.out == Path("outputs") else f" --out {self.out}"
        return f"python run_{stage}.py --setting {self.setting.name} --scale {self.scale.name}{out}"

    def rerun_command(self, ref: str) -> str:
        stage, _, name = ref.partition("/")
        return f"{self.command(stage)} --force --only {name}"

    def finished(self, ref: str) -> Path:
        """The folder of a finished run, resolving selection references; a clear error when it is missing."""
        folder = self.run_dir(resolve(self, ref))
        if not is_done(folder):
            raise UserError(
                f"no finished run {ref!r} in {self.root}: run its stage first (`{self.command(ref.split('/')[0])}`)"
            )
        return folder

    def summary(self, ref: str) -> dict:
        folder = self.finished(ref)
        return read_json(folder / "summary.json", f"rerun it: {self.rerun_command(str(folder.relative_to(self.root)))}")

    def load_model(self, ref: str):
        """The saved model of a finished run; a damaged one is named with the command that rebuilds it."""
        folder = self.finished(ref)
        if (folder / START).is_file():
            return load_start(read_json(folder / START, f"rerun it: {self.rerun_command(ref)}")["source"])
        return load_model(folder / "model", fix=self.rerun_command(str(folder.relative_to(self.root))))

    def finished_runs(self, stage: str) -> list[str]:
        folder = self.root / stage
        if not folder.is_dir():
            return []
        return sorted(f"{stage}/{d.name}" for d in folder.iterdir() if not d.name.startswith(".") and is_done(d))
