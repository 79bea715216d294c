"""Metrics records: always a JSONL file in the run folder; also wandb unless switched off.

wandb runs online when a token is available (tokens/wandb_token.txt or WANDB_API_KEY) and offline otherwise.
A process decides once (`resolve_wandb`): when wandb's server cannot be reached it warns once and logs offline
from then on; a run whose online start still fails logs offline and removes what the failed start wrote.
Tokens never enter a config, a log or a record.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
from functools import lru_cache
from pathlib import Path

from undo.errors import UserError
from undo.io.credentials import read_token
from undo.io.network import unreachable

WANDB_MODES = ("auto", "online", "offline", "off")
WANDB_PROJECT = "undo"
INIT_TIMEOUT_S = 30  # how long wandb may try to start an online run before it falls back to offline


def wandb_mode(requested: str | None = None) -> str:
    """auto -> online with a token, else offline; online without a token is an error."""
    requested = requested or os.environ.get("UNDO_WANDB", "auto")
    if requested not in WANDB_MODES:
        raise UserError(f"unknown wandb mode {requested!r}: choose one of {WANDB_MODES}")
    if requested == "online" and not read_token("wandb"):
        raise UserError(
            "--wandb online needs a token: put it in tokens/wandb_token.txt or WANDB_API_KEY, or use --wandb offline"
        )
    if requested == "auto":
        return "online" if read_token("wandb") else "offline"
    return requested


@lru_cache(maxsize=4)
def _server_problem(server: str) -> str | None:
    """Asked once per process: the stages of run_all.py share the answer (and its one warning)."""
    problem = unreachable(server)
    if problem is not None:
        print(
            f"wandb: cannot reach {server} ({problem}); logging offline "
            "(upload later with `uv run wandb sync <out>/wandb/wandb/offline-run-*`)",
            file=sys.stderr,
        )
    return problem


def resolve_wandb(requested: str | None) -> str:
    """The mode for every run of a launch: online only when wandb's server answers (one warning if not)."""
    mode = wandb_mode(requested)
    if mode != "online":
        return mode
    return "online" if _server_problem(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")) is None else "offline"


def _clean(value):
    """JSON cannot hold NaN/inf: write them as strings so a record never breaks the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class Tracker:
    def __init__(self, path: Path, config: dict, *, name: str, group: str, wandb_dir: Path, mode: str | None = None):
        self.path = Path(path)
        self._file = open(path, "a", encoding="utf-8")
        self._wandb = None
        mode = wandb_mode(mode)
        if mode != "off":
            self._wandb = start_wandb(config, name=name, group=group, wandb_dir=wandb_dir, mode=mode)

    def log(self, record: dict, step: int) -> None:
        record = {"step": step, **{k: _clean(v) for k, v in record.items()}}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._wandb is not None:
            self._wandb.log({k: v for k, v in record.items() if isinstance(v, (int, float))}, step=step)

    def records(self) -> str:
        """The JSONL records written so far (saved with a checkpoint)."""
        return self.path.read_text(encoding="utf-8")

    def restore(self, records: str) -> None:
        """Put back the records of a resumed run's earlier steps (wandb sees only the steps after the resume)."""
        self._file.seek(0)
        self._file.truncate()
        self._file.write(records)
        self._file.flush()

    def summary(self, values: dict) -> None:
        if self._wandb is not None:
            self._wandb.summary.update({k: _clean(v) for k, v in values.items()})

    def finish(self, failed: bool = False) -> None:
        self._file.close()
        if self._wandb is not None:
            self._wandb.finish(exit_code=1 if failed else 0)
            self._wandb = None


_online_failed = False  # once an online start failed, this process logs offline


def start_wandb(config: dict, *, name: str, group: str, wandb_dir: Path, mode: str):
    import wandb  # heavy: only runs logged to wandb need it (--wandb off never imports it)

    wandb_dir.mkdir(parents=True, exist_ok=True)
    settings = wandb.Settings(silent=True, init_timeout=INIT_TIMEOUT_S, x_disable_stats=True)
    kwargs = dict(
        project=WANDB_PROJECT,
        name=name,
        group=group,
        job_type=config.get("stage", "report"),
        tags=[str(config[k]) for k in ("setting", "scale", "stage") if config.get(k)],
        config=config,
        dir=str(wandb_dir),
        settings=settings,
    )
    global _online_failed
    if mode == "online" and not _online_failed:
        os.environ.setdefault("WANDB_API_KEY", read_token("wandb") or "")  # this process only: nothing stored
        runs = wandb_dir / "wandb"
        before = set(runs.iterdir()) if runs.is_dir() else set()
        try:
            return wandb.init(mode="online", **kwargs)
        except Exception as err:  # a bad key or a server that stopped answering: keep the run, log offline
            _online_failed = True
            for leftover in (set(runs.iterdir()) if runs.is_dir() else set()) - before:
                if leftover.is_dir() and not leftover.is_symlink():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink(missing_ok=True)
            print(f"wandb online start failed ({type(err).__name__}); logging offline from now on", file=sys.stderr)
    return wandb.init(mode="offline", **kwargs)
