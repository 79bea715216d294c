"""Typed, validated job parameters: every stage declares a schema, and a whole grid is checked before any job runs.

A schema forbids unknown keys, checks types (no "1e-3" strings for numbers, no 3.5 steps), ranges and
consistency (min_lr <= lr, warmup < steps); setting-dependent checks (mix domains, model presets) read the
validation context {"domains": [...]}. Bad values surface as one list, each line "<job>: <key>: <problem>".
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from undo.errors import UserError

Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]  # ints are accepted, strings are not
Bool = Annotated[bool, Strict()]
Seed = Annotated[int, Strict(), Field(ge=0)]
Count = Annotated[int, Strict(), Field(ge=1)]  # steps, batch sizes, micro-batches, chunk sizes
EvalEvery = Annotated[int, Strict(), Field(ge=0, description="evaluate every N steps (0: at the start and end)")]
LearningRate = Annotated[float, Strict(), Field(gt=0, le=1)]


class InvalidParams(UserError):
    """Bad parameter values, one line each in `problems`."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def problems(err: ValidationError) -> list[str]:
    """One line per problem: "<dotted key>: <message> (got <value>)"."""
    lines = []
    for e in err.errors(include_url=False):
        key = ".".join(str(part) for part in e["loc"]) or "(params)"
        got = "" if e["type"] in ("missing", "extra_forbidden") else f" (got {e['input']!r})"
        message = "unknown key (check its spelling)" if e["type"] == "extra_forbidden" else e["msg"]
        lines.append(f"{key}: {message.removeprefix('Value error, ')}{got}")
    return lines


class Schema(BaseModel):
    """A frozen, strictly typed parameter set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def parse(cls, data: dict, domains: list[str] | None = None):
        """Validate a grid's dict (with the setting's domains as context); InvalidParams lists every problem."""
        try:
            return cls.model_validate(data, context={"domains": domains})
        except ValidationError as err:
            raise InvalidParams(problems(err)) from None


class Optim(Schema):
    """An optimiser (AdamW; SGD with momentum 0.9; Adagrad) with linear warmup then cosine decay to `min_lr`
    (None: constant lr after warmup)."""

    lr: LearningRate
    steps: Count
    optimizer: Literal["adamw", "sgd", "adagrad"] = "adamw"
    warmup: Annotated[int, Strict(), Field(ge=0)] = 0
    min_lr: Annotated[float, Strict(), Field(ge=0)] | None = None
    weight_decay: Annotated[float, Strict(), Field(ge=0)] = 0.0
    betas: tuple[Annotated[float, Strict(), Field(ge=0, lt=1)], Annotated[float, Strict(), Field(ge=0, lt=1)]] = (
        0.9,
        0.95,
    )
    grad_clip: Annotated[float, Strict(), Field(ge=0)] = 1.0
    grad_accum: Count = 1  # micro-batches per step
    sam_rho: Annotated[float, Strict(), Field(ge=0, description="> 0: sharpness-aware minimisation")] = 0.0

    @model_validator(mode="after")
    def _consistent_schedule(self):
        if self.min_lr is not None and self.min_lr > self.lr:
            raise ValueError(f"min_lr {self.min_lr:g} is above lr {self.lr:g}: the schedule decays to min_lr")
        if self.warmup >= self.steps:
            raise ValueError(f"warmup {self.warmup} must be shorter than the run ({self.steps} steps)")
        return self


def _known_domains(mix: dict[str, float], info: ValidationInfo) -> dict[str, float]:
    domains = (info.context or {}).get("domains")
    unknown = sorted(set(mix) - set(domains)) if domains is not None else []
    if unknown:
        raise ValueError(f"unknown domain(s) {unknown}: choose from {domains}")
    return mix


Mix = Annotated[
    dict[str, Annotated[float, Strict(), Field(gt=0, description="drop a domain instead of weighting it 0")]],
    Field(min_length=1),
]


def _run_ref(value: str) -> str:
    stage, _, name = value.partition("/")
    if not stage or not name:
        raise ValueError(f"run reference {value!r} must look like '<stage>/<run-name>', e.g. 'pretrain/base'")
    return value


RunRef = Annotated[str, AfterValidator(_run_ref)]  # "<stage>/<run-name>" or "<stage>/selected:<method>"


class StageParams(Schema):
    """Keys every training stage has."""

    seed: Seed = 0
    batch_size: Count
    eval_every: EvalEvery = 0
    eval_at: tuple[Count, ...] = ()  # further steps to evaluate at (e.g. the paper's attack budgets)
    # the logit losses from hidden states, this many positions at a time (large vocabularies; see undo.model.heads)
    chunk_rows: Count | None = None

    @field_validator("mix", check_fields=False)
    @classmethod
    def _mix_domains(cls, mix, info: ValidationInfo):
        return mix if mix is None else _known_domains(mix, info)

    def inputs(self) -> dict[str, str]:
        """The runs this job reads, by role (selection references unresolved)."""
        return {}
