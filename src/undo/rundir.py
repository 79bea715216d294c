"""One run's output folder, written atomically: a run is complete (DONE present) or not there at all.

The run writes into a hidden sibling `.NAME.tmp-PID` and is renamed into place when it finishes; a failed run
is kept as `.NAME.failed` with its ERROR, and an earlier finished run is only replaced once a forced rerun
succeeds.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from undo.errors import UserError

DONE = "DONE"


def is_done(folder: Path) -> bool:
    return (Path(folder) / DONE).is_file()


class RunDir:
    def __init__(self, final: Path, config: dict):
        self.final = Path(final)
        self.tmp = self.final.with_name(f".{self.final.name}.tmp-{os.getpid()}")
        self.failed = self.final.with_name(f".{self.final.name}.failed")
        try:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp.mkdir()
        except OSError as err:
            raise UserError(
                f"output folder {self.final.parent} is not writable ({err.strerror}): choose another --out"
            ) from None
        self.config = config
        self.write_json("config.json", config)

    @property
    def path(self) -> Path:
        return self.tmp

    def write_json(self, name: str, data: dict) -> None:
        (self.tmp / name).write_text(json.dumps(data, indent=1, sort_keys=False, default=str) + "\n")

    def record_inputs(self, **refs: str) -> None:
        """Add the runs this run actually read (selections resolved) to config.json."""
        self.config = {**self.config, "inputs": refs}
        self.write_json("config.json", self.config)

    def complete(self) -> None:
        """Mark finished and move into place, replacing an earlier finished run only now."""
        (self.tmp / DONE).write_text("")
        old = self.final.with_name(f".{self.final.name}.old-{os.getpid()}")
        if self.final.exists():
            os.replace(self.final, old)
        os.replace(self.tmp, self.final)
        shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(self.failed, ignore_errors=True)

    def fail(self, message: str) -> None:
        """Keep what the run wrote, for diagnosis, under a name that never looks finished."""
        (self.tmp / "ERROR").write_text(message + "\n")
        shutil.rmtree(self.failed, ignore_errors=True)
        os.replace(self.tmp, self.failed)
