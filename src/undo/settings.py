"""The experimental settings (what to keep, what to forget, how both are measured) at each scale.

A setting names its retain and forget domains; a scale says where the text comes from, which tokenizer and
model preset to use and how long the blocks are. Grids of runs live in the top-level run_*.py scripts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from undo.errors import UserError

SCALES = ("embedded", "smoke", "paper")


@dataclass(frozen=True)
class Scale:
    """What changes between a laptop run on embedded data and the paper's GPU runs."""

    name: str
    model: str  # preset name in undo.models.PRESETS
    tokenizer: str  # "embedded" or a Hugging Face hub id
    seq_len: int
    corpora: dict[str, dict]  # domain -> corpus source (see undo.data.corpora)
    eval_batch_size: int = 64
    eval_blocks: int | None = None  # cap on validation blocks per domain (a fixed, deterministic subset)
    attack_budgets: tuple[int, ...] = (0, 40, 500)  # relearning steps reported; the second is the headline


@dataclass(frozen=True)
class Setting:
    """One unlearning problem: a retain domain, a forget domain and their headline metrics."""

    name: str
    retain: str  # domain whose capability is kept
    forget: str  # domain whose capability is removed
    higher_is_better: bool  # direction of both metrics: False for CE, True for accuracy
    scales: dict[str, Scale] = field(default_factory=dict)

    @property
    def retain_metric(self) -> str:
        return f"{self.retain}_ce"

    @property
    def forget_metric(self) -> str:
        return f"{self.forget}_ce"

    def scale(self, name: str) -> Scale:
        if name not in self.scales:
            raise UserError(f"unknown scale {name!r} for setting {self.name!r}: choose one of {sorted(self.scales)}")
        return self.scales[name]


LIBREOFFICE_HELP = {
    "en": {"kind": "embedded", "name": "libreoffice_en"},
    "ko": {"kind": "embedded", "name": "libreoffice_ko"},
}
FINEWEB_EDU = {"kind": "hub", "path": "HuggingFaceFW/fineweb-edu", "name": "sample-10BT"}
FINEWEB2_KOREAN = {"kind": "hub", "path": "HuggingFaceFW/fineweb-2", "name": "kor_Hang"}
PAPER_BUDGET = {"validation_docs": 2000, "validation_tokens": 500_000, "train_tokens": 1_000_000_000}

EMBEDDED_LANGUAGE = Scale(
    name="embedded",
    model="tiny",
    tokenizer="embedded",
    seq_len=128,
    corpora=LIBREOFFICE_HELP,
    eval_blocks=64,
    attack_budgets=(0, 10, 30),
)

LANGUAGE = Setting(
    name="language",
    retain="en",
    forget="ko",
    higher_is_better=False,
    scales={
        "embedded": EMBEDDED_LANGUAGE,
        # The embedded grids cut to a few steps of a micro model: checks the wiring of every stage in seconds.
        "smoke": replace(EMBEDDED_LANGUAGE, name="smoke", model="micro", eval_blocks=8, attack_budgets=(0, 2, 4)),
        "paper": Scale(
            name="paper",
            model="0.1B",
            tokenizer="google/gemma-2-2b",
            seq_len=2048,
            corpora={"en": {**FINEWEB_EDU, **PAPER_BUDGET}, "ko": {**FINEWEB2_KOREAN, **PAPER_BUDGET}},
            eval_batch_size=4,  # 4 x 2048 x 256k fp32 logits are already 8 GB
        ),
    },
)

SETTINGS = {"language": LANGUAGE}
PLANNED = ("arithmetic", "wmdp")


def get_setting(name: str) -> Setting:
    if name in SETTINGS:
        return SETTINGS[name]
    if name in PLANNED:
        raise UserError(f"setting {name!r} is not implemented yet: available settings are {sorted(SETTINGS)}")
    raise UserError(f"unknown setting {name!r}: choose one of {sorted(SETTINGS)}")
