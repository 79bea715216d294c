"""Plant finished runs in an output tree, as stand-ins for runs a test does not want to train."""

from __future__ import annotations

import json
import uuid


def plant_run(exp, ref: str, summary: dict | None = None, config: dict | None = None):
    """A finished run: config.json (with a run id), summary.json and DONE; returns its folder."""
    folder = exp.run_dir(ref)
    folder.mkdir(parents=True, exist_ok=True)
    stage, _, name = ref.partition("/")
    config = {"stage": stage, "name": name, "run_id": uuid.uuid4().hex, **(config or {})}
    (folder / "config.json").write_text(json.dumps(config))
    if summary is not None:
        (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "DONE").write_text("")
    return folder


def plant_scored_models(exp) -> None:
    """Base, oracle, a MaxEnt teacher and its fully distilled student, each at en_ce 4.0 and ko_ce 8.0: the models
    a robustness score needs, for tests that plant their attacks."""
    roles = {
        "pretrain/base": {"role": "base"},
        "pretrain/oracle": {"role": "oracle"},
        "unlearn/maxent-lr1": {"role": "unlearned", "method": "maxent", "base": "pretrain/base"},
        "distill/full-maxent": {"role": "distilled", "method": "maxent", "teacher": "unlearn/maxent-lr1"},
    }
    for ref, extra in roles.items():
        plant_run(exp, ref, {"metrics": {"en_ce": 4.0, "ko_ce": 8.0}, "steps": 1, "flops": 1.0, **extra})
