"""Metrics records: always a JSONL file in the run folder; also wandb unless switched off.

wandb runs online when a token is available (tokens/wandb_token.txt or WANDB_API_KEY) and offline otherwise,
never blocking on the network: a failed online start falls back to offline. Tokens never enter a config.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

from undo.credentials import read_token

WANDB_MODES = ("auto", "online", "offline", "off")
WANDB_PROJECT = "undo"


def wandb_mode(requested: str | None = None) -> str:
    requested = requested or os.environ.get("UNDO_WANDB", "auto")
    if requested not in WANDB_MODES:
        from undo.errors import UserError

        raise UserError(f"unknown wandb mode {requested!r}: choose one of {WANDB_MODES}")
    if requested in ("auto", "online"):
        return "online" if read_token("wandb") else "offline"
    return requested


def _clean(value):
    """JSON cannot hold NaN/inf: write them as strings so a record never breaks the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class Tracker:
    def __init__(self, path: Path, config: dict, *, name: str, group: str, wandb_dir: Path, mode: str | None = None):
        self._file = open(path, "a", encoding="utf-8")
        self._wandb = None
        mode = wandb_mode(mode)
        if mode != "off":
            self._wandb = _start_wandb(config, name=name, group=group, wandb_dir=wandb_dir, mode=mode)

    def log(self, record: dict, step: int) -> None:
        record = {"step": step, **{k: _clean(v) for k, v in record.items()}}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._wandb is not None:
            self._wandb.log({k: v for k, v in record.items() if isinstance(v, (int, float))}, step=step)

    def summary(self, values: dict) -> None:
        if self._wandb is not None:
            self._wandb.summary.update({k: _clean(v) for k, v in values.items()})

    def finish(self, failed: bool = False) -> None:
        self._file.close()
        if self._wandb is not None:
            self._wandb.finish(exit_code=1 if failed else 0)
            self._wandb = None


def _start_wandb(config: dict, *, name: str, group: str, wandb_dir: Path, mode: str):
    import wandb

    wandb_dir.mkdir(parents=True, exist_ok=True)
    settings = wandb.Settings(silent=True, init_timeout=30, x_disable_stats=True)
    kwargs = dict(project=WANDB_PROJECT, name=name, group=group, config=config, dir=str(wandb_dir), settings=settings)
    if mode == "online":
        os.environ.setdefault("WANDB_API_KEY", read_token("wandb") or "")  # this process only: nothing stored
        try:
            return wandb.init(mode="online", **kwargs)
        except Exception as err:  # no network or a bad key: keep the run, log offline
            print(f"wandb online start failed ({err}); logging offline", file=sys.stderr)
    return wandb.init(mode="offline", **kwargs)


def log_report(
    results: dict,
    table_markdown: str,
    figures: list[Path],
    *,
    name: str,
    wandb_dir: Path,
    mode: str | None = None,
) -> None:
    """One wandb run holding the results table (as a wandb.Table) and the figures."""
    mode = wandb_mode(mode)
    if mode == "off":
        return
    import wandb

    run = _start_wandb(
        {"setting": results["setting"], "scale": results["scale"]},
        name=name,
        group="report",
        wandb_dir=wandb_dir,
        mode=mode,
    )
    budgets = results["budgets"]
    columns = [
        "model",
        "role",
        "method",
        "alpha",
        "retain",
        "forget",
        *(f"forget@{b}" for b in budgets),
        "robustness",
        "compute_pct",
    ]
    rows = []
    for e in results["models"]:
        attack = e.get("attack", {})
        rows.append(
            [
                e["name"],
                e["role"],
                e["method"],
                e["alpha"],
                e["metrics"]["retain"],
                e["metrics"]["forget"],
                *(attack.get(str(b), {}).get("forget") for b in budgets),
                e.get("robustness", {}).get("headline"),
                e["compute_pct"],
            ]
        )
    run.log(
        {
            "results": wandb.Table(columns=columns, data=rows),
            "results_markdown": wandb.Html(f"<pre>{table_markdown}</pre>"),
            **{f"figures/{p.stem}": wandb.Image(str(p)) for p in figures},
        }
    )
    run.finish()
