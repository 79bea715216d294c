"""One run's output folder, written atomically: a run is complete (DONE present) or not there at all.

The run writes into a hidden sibling `.NAME.tmp-HOST-PID` and is renamed into place when it finishes; a failed
run is kept as `.NAME.failed` with its ERROR, and an earlier finished run is only replaced once a forced rerun
succeeds. Its config.json holds the run's identity (undo.runs.identity): a fingerprint of what it computes, a run id
of this execution, and the runs it read. A paper-scale run also checkpoints to `.NAME.ckpt`, removed when the
run completes.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from undo.errors import UserError
from undo.io.files import read_json, temporary, write_json
from undo.training.checkpoint import STATE, Checkpoint

if TYPE_CHECKING:  # annotations only: the experiment sits above this layer
    from undo.experiment import Experiment

DONE = "DONE"


def is_done(folder: Path) -> bool:
    return (Path(folder) / DONE).is_file()


def run_identity(exp: Experiment, ref: str) -> dict:
    """The config.json of the finished run `ref` (no selection references)."""
    return read_json(exp.run_dir(ref) / "config.json", f"rerun it: {exp.rerun_command(ref)}")


def checkpoint_folder(final: Path) -> Path:
    return Path(final).with_name(f".{Path(final).name}.ckpt")


class RunDir:
    def __init__(self, final: Path, config: dict, checkpoint_every: int = 0, keep_checkpoint: bool = False):
        self.final = Path(final)
        self.tmp = temporary(self.final)
        self.failed = self.final.with_name(f".{self.final.name}.failed")
        try:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp.mkdir()
        except OSError as err:
            raise UserError(
                f"output folder {self.final.parent} is not writable ({err.strerror}): choose another --out"
            ) from None
        self.config = {**config, "run_id": uuid.uuid4().hex}
        self.checkpoint = Checkpoint(
            checkpoint_folder(self.final), checkpoint_every, config["fingerprint"], keep=keep_checkpoint
        )
        self.write_json("config.json", self.config)

    @property
    def path(self) -> Path:
        return self.tmp

    def write_json(self, name: str, data: dict) -> None:
        write_json(self.tmp / name, data)

    def record_inputs(self, exp: Experiment, **refs: str) -> None:
        """Add the runs this run read (as loaded: selections already resolved), with their run ids, to config.json."""
        inputs = {role: {"ref": ref, "run_id": run_identity(exp, ref)["run_id"]} for role, ref in refs.items()}
        self.config = {**self.config, "inputs": inputs}
        self.write_json("config.json", self.config)

    def complete(self) -> None:
        """Mark finished and move into place, replacing an earlier finished run only now; the final training state
        goes into the run as training_state.pt when it is to be kept."""
        state = self.checkpoint.folder / STATE
        if self.checkpoint.keep and state.is_file():
            os.replace(state, self.tmp / "training_state.pt")
        (self.tmp / DONE).write_text("")
        old = temporary(self.final, "old")
        if self.final.exists():
            os.replace(self.final, old)
        os.replace(self.tmp, self.final)
        shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(self.failed, ignore_errors=True)
        self.checkpoint.clear()

    def fail(self, message: str) -> None:
        """Keep what the run wrote, for diagnosis, under a name that never looks finished (its checkpoint stays
        for the rerun to resume)."""
        (self.tmp / "ERROR").write_text(message + "\n")
        shutil.rmtree(self.failed, ignore_errors=True)
        os.replace(self.tmp, self.failed)
