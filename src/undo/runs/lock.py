"""One process at a time per run: two launches into one output tree (a researcher starts run_relearn.py on some
GPUs while run_all.py runs on others) must not train the same run twice, nor replace a run that another stage
has already read.

The lock is an advisory POSIX lock (fcntl) on `<stage>/.<name>.lock`: the kernel, or a shared filesystem's lock
manager, holds it for the live process that took it and drops it when that process dies, however it dies, so a
dead holder's lock is taken over at once and a live one's is waited for. The small hidden file stays (removing
it would let a waiter hold the lock of a file no longer there).
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from pathlib import Path

from undo.io.files import HOST

POLL_S = 2.0  # how often a waiting launch asks again


class RunLock:
    """`with RunLock(final):` holds the run's lock, waiting while another live process holds it."""

    def __init__(self, final: Path):
        self.final = Path(final)
        self.path = self.final.with_name(f".{self.final.name}.lock")
        self._file = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a+")  # held open for as long as the lock
        waited = False
        while True:
            try:
                fcntl.lockf(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:  # held by a live process
                if not waited:
                    print(f"{self.final}: another launch is running it ({self._owner()}); waiting", flush=True)
                waited = True
                time.sleep(POLL_S)
        self._file.seek(0)
        self._file.truncate()
        self._file.write(json.dumps({"host": HOST, "pid": os.getpid(), "argv": sys.argv[:4]}))
        self._file.flush()
        return self

    def __exit__(self, *exc) -> None:
        fcntl.lockf(self._file, fcntl.LOCK_UN)
        self._file.close()

    def _owner(self) -> str:
        try:
            owner = json.loads(self.path.read_text())
            return f"{owner['host']} pid {owner['pid']}"
        except (OSError, ValueError, KeyError):
            return "owner unknown"
