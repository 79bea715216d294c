"""One setting at one scale, rooted in an output tree: data, tokenizer, devices and run folders by name.

outputs/<setting>/<scale>/<stage>/<run-name>/ holds each run; later stages name their inputs as
"<stage>/<run-name>" (or "<stage>/selected:<method>", see undo.selection) and never need a hand-edited path.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

from undo.data.blocks import TokenBlocks
from undo.data.prepare import prepared_blocks
from undo.errors import UserError
from undo.rundir import is_done
from undo.settings import get_setting

BASE = "pretrain/base"  # the pretrained model that unlearning starts from
ORACLE = "pretrain/oracle"  # the data-filtered gold standard: pretrained without the forget data


class Experiment:
    def __init__(self, setting: str = "language", scale: str = "embedded", out: Path | str = "outputs"):
        self.setting = get_setting(setting)
        self.scale = self.setting.scale(scale)
        self.out = Path(out)
        self.root = self.out / self.setting.name / self.scale.name

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
    def tokenizer(self):
        from undo.data.tokenizer import load_tokenizer

        return load_tokenizer(self.scale.tokenizer)

    def blocks(self, domain: str, split: str) -> TokenBlocks:
        if domain not in self.scale.corpora:
            raise UserError(f"unknown domain {domain!r} for setting {self.setting.name!r}: choose from {self.domains}")
        return prepared_blocks(
            self.scale.corpora[domain], self.scale.tokenizer, self.scale.seq_len, split, self.cache_root
        )

    @cached_property
    def accelerator(self):
        import torch
        from accelerate import Accelerator

        return Accelerator(mixed_precision="bf16" if torch.cuda.is_available() else "no")

    def run_dir(self, ref: str) -> Path:
        """The folder of run "<stage>/<name>"."""
        stage, _, name = ref.partition("/")
        if not stage or not name:
            raise UserError(f"run reference {ref!r} must look like '<stage>/<run-name>', e.g. 'pretrain/base'")
        return self.root / stage / name

    def finished(self, ref: str) -> Path:
        """The folder of a finished run, resolving selection references; a clear error when it is missing."""
        from undo.selection import resolve

        folder = self.run_dir(resolve(self, ref))
        if not is_done(folder):
            raise UserError(
                f"no finished run {ref!r} in {self.root}: run its stage first (e.g. `python run_{ref.split('/')[0]}.py"
                f" --setting {self.setting.name} --scale {self.scale.name}`)"
            )
        return folder

    def summary(self, ref: str) -> dict:
        return json.loads((self.finished(ref) / "summary.json").read_text())

    def finished_runs(self, stage: str) -> list[str]:
        folder = self.root / stage
        if not folder.is_dir():
            return []
        return sorted(f"{stage}/{d.name}" for d in folder.iterdir() if not d.name.startswith(".") and is_done(d))
