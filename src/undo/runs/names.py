"""Names that runs, stages and the report share, spelled once: the pretrained models every setting refers to,
selection references, the roles a model plays in the report, and the files a run folder may hold."""

from __future__ import annotations

BASE = "pretrain/base"  # the pretrained model that unlearning starts from
ORACLE = "pretrain/oracle"  # the data-filtered gold standard: pretrained without the forget data
SELECTED = "selected:"  # "<stage>/selected:<method>": the run that teacher selection picks for a method
START = "start.json"  # in a run folder: the pretrained checkpoint the run stands for, in place of model/

# The part a model plays in the report (summary.json "role"); pretraining names its own (base, oracle).
UNLEARNED, DISTILLED, UNDO, MATCHED, RESET, ATTACK = "unlearned", "distilled", "undo", "matched", "reset", "attack"


def selected(method: str, stage: str = "unlearn") -> str:
    """The reference to `method`'s selected run, e.g. "unlearn/selected:maxent"."""
    return f"{stage}/{SELECTED}{method}"
