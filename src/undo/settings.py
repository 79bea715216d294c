"""The experimental settings (what to keep, what to forget, how both are measured) at each scale.

A setting names its retain and forget domains; a scale says where the text comes from, which tokenizer and
model preset to use and how long the blocks are. Grids of runs live in the top-level run_*.py scripts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from undo.data.arithmetic import FORMATS, metric_name
from undo.data.local import local_source
from undo.data.quiz import FORGET_CATEGORIES, RETAIN_CATEGORIES
from undo.data.tokenizer import GEMMA_SIZED
from undo.errors import UserError
from undo.evaluate.arithmetic import ArithmeticAccuracy
from undo.evaluate.ce import DomainCE, ce_metric
from undo.evaluate.metrics import Metric
from undo.evaluate.multiple_choice import MultipleChoice
from undo.evaluate.tasks import Task

SCALES = ("embedded", "smoke", "paper", "rehearsal")

# At Gemma's 256k vocabulary the paper grids compute every logit loss from hidden states, 1024 positions at a
# time: one (B, 2048, 256k) fp32 logit tensor alone is 2 GB a row; 1024 positions took a third of the memory of full
# logits, and ran faster than 256, on an H200 (benchmarks/distill_memory.py, gpu_check.py; docs/performance.md).
PAPER_CHUNK_ROWS = 1024
PUBLIC_BETAS = (0.9, 0.999)  # the public code's AdamW betas (torch's default): the paper-scale grids use them


@dataclass(frozen=True)
class Scale:
    """What changes between a laptop run on embedded data and the paper's GPU runs."""

    name: str
    model: str  # preset name in undo.model.models.PRESETS
    tokenizer: str  # "embedded" or a Hugging Face hub id
    seq_len: int
    corpora: dict[str, dict]  # domain -> corpus source (see undo.data.corpora)
    eval_batch_size: int = 32  # blocks a forward (32 beat 64 on a 2-core CPU: docs/performance.md)
    eval_blocks: int | None = None  # cap on validation blocks per domain (a fixed, deterministic subset)
    attack_eval_blocks: int | None = None  # the attacks' cap, where their many evaluations need a smaller sample
    eval_items: int | None = None  # generated evaluation problems per operation and format (None: the paper's)
    attack_budgets: tuple[int, ...] = (0, 40, 500)  # relearning steps reported; the second is the headline
    attack_family: str = "finetune"  # the attacks the report's robustness reads (undo.stages.relearn.family)
    checkpoint_every: int = 0  # save the training state every N steps so a killed run resumes (0: never)
    # Where a scale differs from its setting: its own retain data, tasks and retain and forget metrics.
    retain_data: str | dict[str, float] | None = None
    tasks: tuple[Task, ...] = ()
    retain: Metric | None = None
    forget: Metric | None = None


@dataclass(frozen=True)
class Setting:
    """One unlearning problem: the data whose capability is kept and removed, the evaluation tasks, and the
    retain and forget metrics that every later stage (selection, stop rules, attacks, report) reads."""

    name: str
    retain_data: str | dict[str, float]  # domain(s) trained on to keep the capability (unlearning's retain stream)
    forget_data: str | dict[str, float]  # domain(s) of the capability to remove (unlearning, the relearning attack)
    tasks: tuple[Task, ...]
    retain: Metric
    forget: Metric
    scales: dict[str, Scale] = field(default_factory=dict)
    forget_text: tuple[str, ...] = ()  # other domains of forget-domain text (WMDP's raw corpora, for the attack)

    @property
    def retain_mix(self) -> dict[str, float]:
        return _as_mix(self.retain_data)

    @property
    def forget_mix(self) -> dict[str, float]:
        return _as_mix(self.forget_data)

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

    def at(self, scale: str) -> Setting:
        """The setting at one scale: with that scale's retain data, tasks and metrics where it has its own."""
        own = self.scale(scale)
        return replace(
            self,
            retain_data=own.retain_data or self.retain_data,
            tasks=own.tasks or self.tasks,
            retain=own.retain or self.retain,
            forget=own.forget or self.forget,
        )


def _as_mix(data: str | dict[str, float]) -> dict[str, float]:
    return {data: 1.0} if isinstance(data, str) else dict(data)


def smoke(embedded: Scale, **fewer) -> Scale:
    """The embedded scale on a micro model with small evaluations: with the embedded grids cut to a few steps
    (undo.cli.smoke), every stage's wiring is checked in seconds."""
    return replace(embedded, name="smoke", model="micro", eval_blocks=8, attack_budgets=(0, 2, 4), **fewer)


def paper_scale(**fields) -> Scale:
    """A paper scale: Gemma-2's tokenizer, the hub corpora, a checkpoint every 100 steps so a killed job resumes."""
    return Scale(name="paper", tokenizer="google/gemma-2-2b", checkpoint_every=100, **fields)


def rehearsal(paper: Scale, **changes) -> Scale:
    """The paper scale rehearsed on a CPU (undo.rehearsal): the paper's model and sequence length at Gemma's
    vocabulary size, local files in the hub corpora's formats, one row per evaluation batch, one validation
    block per domain, a few problems, a checkpoint every step."""
    corpora = {domain: local_source(source) for domain, source in paper.corpora.items()}
    few = dict(
        eval_batch_size=1,
        eval_blocks=1,
        attack_eval_blocks=None,
        eval_items=4,
        attack_budgets=(0, 1),
        checkpoint_every=1,
    )
    return replace(paper, name="rehearsal", tokenizer=GEMMA_SIZED, corpora=corpora, **few, **changes)


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

PAPER_LANGUAGE = paper_scale(
    model="0.1B",
    seq_len=2048,
    corpora={"en": {**FINEWEB_EDU, **PAPER_BUDGET}, "ko": {**FINEWEB2_KOREAN, **PAPER_BUDGET}},
    eval_batch_size=4,  # 4 x 2048 x 256k fp32 logits are already 8 GB
    attack_eval_blocks=64,  # 131k tokens a domain at each of an attack's evaluations (docs/scales.md)
)

LANGUAGE = Setting(
    name="language",
    retain_data="en",
    forget_data="ko",
    tasks=(DomainCE(domain="en"), DomainCE(domain="ko")),
    retain=ce_metric("en"),
    forget=ce_metric("ko"),
    scales={
        "embedded": EMBEDDED_LANGUAGE,
        "smoke": smoke(EMBEDDED_LANGUAGE),
        "paper": PAPER_LANGUAGE,
        "rehearsal": rehearsal(PAPER_LANGUAGE),
    },
)


def arithmetic_corpus(ops: tuple[str, ...], equations: int, word_problems: int, **options) -> dict:
    """Generated problems per operation (undo.data.arithmetic), trained with loss on the answer only unless
    `options` say `loss_on="all"`."""
    return {"kind": "arithmetic", "ops": list(ops), "equations": equations, "word_problems": word_problems, **options}


ADD_SUB, MUL_DIV = ("add", "sub"), ("mul", "div")
# Two layers and 64-token blocks (equations are ~8 tokens): see run_pretrain.py for the recipe and why.
EMBEDDED_ARITHMETIC = Scale(
    name="embedded",
    model="tiny-2l",
    tokenizer="embedded",
    seq_len=64,
    corpora={
        "en": LIBREOFFICE_HELP["en"],
        "addsub": arithmetic_corpus(ADD_SUB, equations=40_000, word_problems=4_000),
        "muldiv": arithmetic_corpus(MUL_DIV, equations=40_000, word_problems=4_000),
    },
    eval_blocks=64,
    eval_batch_size=100,  # greedy answers, 100 prompts a call (docs/performance.md)
    attack_budgets=(0, 10, 30),
)

# The public arithmetic scripts: the 0.3B model, 256-token sequences, Gemma-2's tokenizer (digits split), 1M
# equations and 1M word problems over the four operations (250k + 250k each) with loss on every token.
PUBLIC_PROBLEMS = dict(equations=250_000, word_problems=250_000, loss_on="all")
PAPER_ARITHMETIC = paper_scale(
    model="0.3B",
    seq_len=256,
    corpora={
        "en": {**FINEWEB_EDU, **PAPER_BUDGET, "train_tokens": 100_000_000},
        "addsub": arithmetic_corpus(ADD_SUB, **PUBLIC_PROBLEMS),
        "muldiv": arithmetic_corpus(MUL_DIV, **PUBLIC_PROBLEMS),
    },
    eval_blocks=64,
    eval_batch_size=100,
)

ARITHMETIC = Setting(
    name="arithmetic",
    retain_data="addsub",
    forget_data="muldiv",
    tasks=(
        ArithmeticAccuracy(ops=ADD_SUB),
        ArithmeticAccuracy(ops=MUL_DIV),
        DomainCE(domain="en"),
    ),
    retain=mean_accuracy("addsub_acc", ADD_SUB),
    forget=mean_accuracy("muldiv_acc", MUL_DIV),
    scales={
        "embedded": EMBEDDED_ARITHMETIC,
        "smoke": smoke(EMBEDDED_ARITHMETIC, eval_items=8),
        "paper": PAPER_ARITHMETIC,
        "rehearsal": rehearsal(PAPER_ARITHMETIC),
    },
)

# WMDP's stand-in: the shipped quiz facts, one category forgotten, the others kept (see undo.data.quiz).
EMBEDDED_WMDP = Scale(
    name="embedded",
    model="tiny",
    tokenizer="embedded",
    seq_len=128,
    corpora={
        "en": LIBREOFFICE_HELP["en"],
        "forget": {"kind": "quiz", "categories": list(FORGET_CATEGORIES), "passes": 40},
        "retain": {"kind": "quiz", "categories": list(RETAIN_CATEGORIES), "passes": 40},
    },
    eval_blocks=64,
    attack_budgets=(0, 10, 30),
    # Its attack trains on half of the forget questions and is scored on the other half, never shown: trained and
    # scored on the same questions it would measure re-memorised answers, not recovered knowledge.
    attack_family="finetune+held-out",
)
WMDP = Setting(
    name="wmdp",
    retain_data="retain",
    forget_data="forget",
    tasks=(
        MultipleChoice(metric="forget_acc", quiz=FORGET_CATEGORIES),
        MultipleChoice(metric="retain_acc", quiz=RETAIN_CATEGORIES),
        DomainCE(domain="en"),
    ),
    retain=Metric("retain_acc", higher_is_better=True),
    forget=Metric("forget_acc", higher_is_better=True),
    # The paper's WMDP runs are the settings wmdp-bio and wmdp-cyber below: each domain on its own.
    scales={"embedded": EMBEDDED_WMDP, "smoke": smoke(EMBEDDED_WMDP)},
)

# The paper's WMDP, as its public scripts ran it: bio and cyber unlearned, distilled, attacked and scored apart,
# each from google/gemma-2-2b. Unlearning trains on question-answer pairs written from the domain's WMDP corpora by
# scripts/make_qa.py (local JSONL) and keeps the domain's retain pairs and WikiText-2; UNDO distils on web text,
# Wikipedia, seven Magpie instruction sets (their responses) and general Wikipedia QA; the attack trains on the raw
# corpora, forget and retain half and half.
WMDP_QA = "data/wmdp"
# Magpie sets of the public distillation mix: hub id and weight (0.29 in all).
MAGPIE = {
    "magpie-llama-3.3": ("Magpie-Align/Magpie-Llama-3.3-Pro-1M-v0.1", 0.05),
    "magpie-llama-3.1": ("Magpie-Align/Magpie-Llama-3.1-Pro-1M-v0.1", 0.04),
    "magpie-llama-3": ("Magpie-Align/Llama-3-Magpie-Pro-1M-v0.1", 0.04),
    "magpie-gemma-2": ("Magpie-Align/Magpie-Gemma2-Pro-534K-v0.1", 0.04),
    "magpie-phi-3": ("Magpie-Align/Magpie-Phi3-Pro-1M-v0.1", 0.04),
    "magpie-qwen-2.5": ("Magpie-Align/Magpie-Qwen2.5-Pro-1M-v0.1", 0.04),
    "magpie-qwen-2": ("Magpie-Align/Magpie-Qwen2-Pro-1M-v0.1", 0.04),
}
# The raw corpora of the attack (cais/wmdp-corpora; bio's forget corpus is a gated repository of its own).
WMDP_CORPORA = {
    "bio": (
        {"kind": "hub", "path": "cais/wmdp-bio-forget-corpus"},
        {"kind": "hub", "path": "cais/wmdp-corpora", "name": "bio-retain-corpus"},
    ),
    "cyber": (
        {"kind": "hub", "path": "cais/wmdp-corpora", "name": "cyber-forget-corpus"},
        {"kind": "hub", "path": "cais/wmdp-corpora", "name": "cyber-retain-corpus"},
    ),
}
DISTILLATION_TEXT = {
    "web": {**FINEWEB_EDU, "validation_docs": 500, "train_tokens": 400_000_000},
    "wikipedia": {
        "kind": "hub",
        "path": "wikimedia/wikipedia",
        "name": "20231101.en",
        "validation_docs": 500,
        "train_tokens": 400_000_000,
    },
    **{
        domain: {
            "kind": "hub",
            "path": path,
            "text_field": "response",
            "validation_docs": 200,
            "train_tokens": 40_000_000,
        }
        for domain, (path, _) in MAGPIE.items()
    },
    "wikipedia-qa": {"kind": "qa", "data_files": [f"{WMDP_QA}/wikipedia_qa.jsonl"], "validation_docs": 200},
}
# UNDO's mix in the public scripts: web and Wikipedia 0.35 each, the Magpie responses 0.29, Wikipedia QA 0.01.
WMDP_DISTILLATION_MIX = {
    "web": 0.35,
    "wikipedia": 0.35,
    **{domain: weight for domain, (_, weight) in MAGPIE.items()},
    "wikipedia-qa": 0.01,
}
MMLU = MultipleChoice(metric="mmlu", task="mmlu", num_fewshot=5, limit=0.4)


def wmdp_domain(domain: str) -> Setting:
    """One WMDP domain at paper scale: google/gemma-2-2b scored on that domain's WMDP questions (0-shot) and MMLU
    (5-shot on a 40% subsample), forgetting measured on that domain alone."""
    forget_corpus, retain_corpus = WMDP_CORPORA[domain]
    qa = {
        part: {"kind": "qa", "data_files": [f"{WMDP_QA}/{domain}_{part}_qa.jsonl"], "validation_docs": 200}
        for part in ("forget", "retain")
    }
    corpora = {
        **qa,
        "wikitext": {"kind": "hub", "path": "Salesforce/wikitext", "name": "wikitext-2-raw-v1", "validation_docs": 500},
        "forget-corpus": {**forget_corpus, "validation_docs": 100},
        "retain-corpus": {**retain_corpus, "validation_docs": 100},
        **DISTILLATION_TEXT,
    }
    paper = paper_scale(
        model="gemma-2-2b", seq_len=1024, corpora=corpora, eval_batch_size=8, attack_budgets=(0, 10, 25, 50, 150, 500)
    )
    # lm-eval's WMDP and MMLU tasks come from the hub: the rehearsal scores the local quiz under their names, and a
    # randomly initialised model of Gemma-2-2b's depth saved locally stands in for the pretrained start.
    quiz_tasks = (
        MultipleChoice(metric=f"wmdp_{domain}", quiz=FORGET_CATEGORIES, limit=0.1),
        MultipleChoice(metric="mmlu", quiz=RETAIN_CATEGORIES, num_fewshot=5, limit=0.05),
    )
    return Setting(
        name=f"wmdp-{domain}",
        retain_data={"retain": 0.5, "wikitext": 0.5},  # unlearning keeps the retain QA and WikiText-2
        forget_data="forget",
        tasks=(MultipleChoice(metric=f"wmdp_{domain}", task=f"wmdp_{domain}"), MMLU),
        retain=Metric("retain_acc", higher_is_better=True, mean_of=("mmlu",)),
        forget=Metric("forget_acc", higher_is_better=True, mean_of=(f"wmdp_{domain}",)),
        forget_text=("forget-corpus",),
        scales={
            "paper": paper,
            "rehearsal": rehearsal(paper, model="0.1B-26-layers", tasks=quiz_tasks),
        },
    )


WMDP_SETTINGS = {f"wmdp-{domain}": wmdp_domain(domain) for domain in WMDP_CORPORA}  # the paper's WMDP, per domain
SETTINGS = {"language": LANGUAGE, "arithmetic": ARITHMETIC, "wmdp": WMDP, **WMDP_SETTINGS}


def get_setting(name: str) -> Setting:
    if name in SETTINGS:
        return SETTINGS[name]
    raise UserError(f"unknown setting {name!r}: choose one of {sorted(SETTINGS)}")
