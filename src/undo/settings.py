"""The experimental settings (what to keep, what to forget, how both are measured) at each scale.

A setting names its retain and forget domains; a scale says where the text comes from, which tokenizer and
model preset to use and how long the blocks are. Grids of runs live in the top-level run_*.py scripts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from undo.data.arithmetic import FORMATS, metric_name
from undo.errors import UserError
from undo.evaluate import Task, make_task
from undo.evaluate.ce import ce_metric
from undo.metrics import Metric

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
    eval_items: int | None = None  # generated evaluation problems per operation and format (None: the paper's)
    attack_budgets: tuple[int, ...] = (0, 40, 500)  # relearning steps reported; the second is the headline
    checkpoint_every: int = 0  # save the training state every N steps so a killed run resumes (0: never)


@dataclass(frozen=True)
class Setting:
    """One unlearning problem: the data whose capability is kept and removed, the evaluation tasks, and the
    retain and forget metrics that every later stage (selection, stop rules, attacks, report) reads."""

    name: str
    retain_data: str  # domain trained on to keep the capability (unlearning's retain stream)
    forget_data: str  # domain of the capability to remove (unlearning's forget stream, the relearning attack)
    tasks: tuple[Task, ...]
    retain: Metric
    forget: Metric
    scales: dict[str, Scale] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, Metric]:
        """Every metric the setting reports: its tasks' metrics and the aggregates."""
        metrics = {m.name: m for task in self.tasks for m in task.metrics}
        return {**metrics, self.retain.name: self.retain, self.forget.name: self.forget}

    def metric(self, name: str) -> Metric:
        if name not in self.metrics:
            raise UserError(f"unknown metric {name!r} for setting {self.name!r}: choose one of {sorted(self.metrics)}")
        return self.metrics[name]

    def scale(self, name: str) -> Scale:
        if name not in self.scales:
            raise UserError(f"unknown scale {name!r} for setting {self.name!r}: choose one of {sorted(self.scales)}")
        return self.scales[name]


def mean_accuracy(name: str, ops: tuple[str, ...]) -> Metric:
    """The mean accuracy over the operations' equations and word problems."""
    return Metric(name, higher_is_better=True, mean_of=tuple(metric_name(op, form) for op in ops for form in FORMATS))


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
    retain_data="en",
    forget_data="ko",
    tasks=(make_task("ce", domain="en"), make_task("ce", domain="ko")),
    retain=ce_metric("en"),
    forget=ce_metric("ko"),
    scales={
        "embedded": EMBEDDED_LANGUAGE,
        # The embedded grids cut to a few steps of a micro model: checks the wiring of every stage in seconds.
        "smoke": replace(EMBEDDED_LANGUAGE, name="smoke", model="micro", eval_blocks=8, attack_budgets=(0, 2, 4)),
        "paper": Scale(
            name="paper",
            checkpoint_every=100,
            model="0.1B",
            tokenizer="google/gemma-2-2b",
            seq_len=2048,
            corpora={"en": {**FINEWEB_EDU, **PAPER_BUDGET}, "ko": {**FINEWEB2_KOREAN, **PAPER_BUDGET}},
            eval_batch_size=4,  # 4 x 2048 x 256k fp32 logits are already 8 GB
        ),
    },
)


def arithmetic_corpus(ops: tuple[str, ...], equations: int, word_problems: int) -> dict:
    """Generated problems per operation (undo.data.arithmetic), trained with loss on the answer only."""
    return {"kind": "arithmetic", "ops": list(ops), "equations": equations, "word_problems": word_problems}


ADD_SUB, MUL_DIV = ("add", "sub"), ("mul", "div")
EMBEDDED_ARITHMETIC = Scale(
    name="embedded",
    model="tiny",
    tokenizer="embedded",
    seq_len=128,
    corpora={
        "en": LIBREOFFICE_HELP["en"],
        "addsub": arithmetic_corpus(ADD_SUB, equations=40_000, word_problems=4_000),
        "muldiv": arithmetic_corpus(MUL_DIV, equations=40_000, word_problems=4_000),
    },
    eval_blocks=64,
    eval_batch_size=200,
    attack_budgets=(0, 10, 30),
)

ARITHMETIC = Setting(
    name="arithmetic",
    retain_data="addsub",
    forget_data="muldiv",
    tasks=(
        make_task("arithmetic", ops=ADD_SUB),
        make_task("arithmetic", ops=MUL_DIV),
        make_task("ce", domain="en"),
    ),
    retain=mean_accuracy("addsub_acc", ADD_SUB),
    forget=mean_accuracy("muldiv_acc", MUL_DIV),
    scales={
        "embedded": EMBEDDED_ARITHMETIC,
        "smoke": replace(
            EMBEDDED_ARITHMETIC, name="smoke", model="micro", eval_blocks=8, eval_items=8, attack_budgets=(0, 2, 4)
        ),
        # The public arithmetic scripts: the 0.3B model, 256-token sequences, Gemma-2's tokenizer (digits split).
        "paper": Scale(
            name="paper",
            checkpoint_every=100,
            model="0.3B",
            tokenizer="google/gemma-2-2b",
            seq_len=256,
            corpora={
                "en": {**FINEWEB_EDU, **PAPER_BUDGET, "train_tokens": 100_000_000},
                "addsub": arithmetic_corpus(ADD_SUB, equations=100_000, word_problems=50_000),
                "muldiv": arithmetic_corpus(MUL_DIV, equations=100_000, word_problems=50_000),
            },
            eval_blocks=64,
            eval_batch_size=100,
        ),
    },
)

SETTINGS = {"language": LANGUAGE, "arithmetic": ARITHMETIC}
PLANNED = ("wmdp",)


def get_setting(name: str) -> Setting:
    if name in SETTINGS:
        return SETTINGS[name]
    if name in PLANNED:
        raise UserError(f"setting {name!r} is not implemented yet: available settings are {sorted(SETTINGS)}")
    raise UserError(f"unknown setting {name!r}: choose one of {sorted(SETTINGS)}")
