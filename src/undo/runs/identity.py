"""A run's identity: a fingerprint of what it computes, and the id of the execution that produced it.

The fingerprint covers the setting, scale, stage, run name, the job's params exactly as the grid wrote them,
and the data the scale trains on (corpora, tokenizer, block length, model preset). A finished run is *current*
when its fingerprint equals the one its grid job has now, every run it read is still the very execution it read
(same run id), and every selection it followed still picks the same run. Otherwise it is *stale*, for reasons
these functions spell out.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

from undo.errors import UserError
from undo.runs.names import SELECTED
from undo.runs.rundir import is_done, run_identity
from undo.runs.selection import resolve

if TYPE_CHECKING:  # annotations only: the experiment sits above this layer
    from undo.experiment import Experiment

IDENTITY = ("setting", "scale", "stage", "name", "params", "data")


def fingerprint(config: dict) -> str:
    spec = {key: config.get(key) for key in IDENTITY}
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def job_config(exp: Experiment, job) -> dict:
    """The config.json a run of `job` starts with (its inputs are added once the stage has resolved them)."""
    config = {
        "setting": exp.setting.name,
        "scale": exp.scale.name,
        "stage": job.stage,
        "name": job.name,
        "params": job.params,
        "data": exp.data_fingerprint,
    }
    return {**config, "fingerprint": fingerprint(config)}


def changed_inputs(exp: Experiment, config: dict) -> list[str]:
    """Why the runs recorded in `config` as read are no longer the ones it read (empty: they are)."""
    reasons = []
    for role, read in config.get("inputs", {}).items():
        if not is_done(exp.run_dir(read["ref"])):
            reasons.append(f"its {role} {read['ref']} is no longer finished")
        elif run_identity(exp, read["ref"]).get("run_id") != read["run_id"]:
            reasons.append(f"its {role} {read['ref']} was rerun after this run read it")
    return reasons


def stale_reasons(exp: Experiment, job, params) -> list[str]:
    """Why the finished run of `job` is not what the grid asks for now (empty: it is current)."""
    want = job_config(exp, job)
    try:
        have = run_identity(exp, job.ref)
    except UserError:
        return ["its config.json is missing or damaged"]
    if have.get("fingerprint") != want["fingerprint"]:
        return [differences(have, want)]
    reasons = changed_inputs(exp, have)
    recorded = {role: read["ref"] for role, read in have.get("inputs", {}).items()}
    for role, ref in params.inputs().items():
        if SELECTED in ref and role in recorded:
            try:
                now = resolve(exp, ref, record=False)
            except UserError:
                continue
            if now != recorded[role]:
                reasons.append(f"{ref} now selects {now}, but this run read {recorded[role]}")
    return reasons


def _flatten(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        return {k: v for key in value for k, v in _flatten(value[key], f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): value}


def differences(have: dict, want: dict, shown: int = 4) -> str:
    """What changed between a run's config and the job's, e.g. "params.seed 0 -> 1"."""
    if "fingerprint" not in have:
        return "it was made before runs had fingerprints"
    old, new = _flatten({k: have.get(k) for k in IDENTITY}), _flatten({k: want.get(k) for k in IDENTITY})
    show = lambda values, key: json.dumps(values[key]) if key in values else "(unset)"  # noqa: E731
    changed = [
        f"{key} {show(old, key)} -> {show(new, key)}"
        for key in sorted(old.keys() | new.keys())
        if show(old, key) != show(new, key)
    ]
    extra = f" and {len(changed) - shown} more" if len(changed) > shown else ""
    return ", ".join(changed[:shown]) + extra if changed else "its fingerprint differs"
