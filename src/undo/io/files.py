"""Files that are either whole or absent: atomic writes, JSON reads that name a damaged file and its fix, and
the sweeping of temporary files that killed processes left behind.

Every temporary name ends in `<tag>-<host>-<pid>` (see `temporary`), so a later launch on the same host can
tell a dead process's leftovers from a live one's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
from pathlib import Path

from undo.errors import UserError

HOST = socket.gethostname()


def temporary(path: Path, tag: str = "tmp") -> Path:
    """A hidden sibling of `path` owned by this process, e.g. `.base.tmp-host-1234`."""
    path = Path(path)
    return path.with_name(f".{path.name}.{tag}-{HOST}-{os.getpid()}")


def write_text(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never half of one."""
    path = Path(path)
    partial = temporary(path, "partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def write_json(path: Path, data) -> None:
    write_text(path, json.dumps(data, indent=1, default=str) + "\n")


def read_json(path: Path, fix: str):
    """The parsed file; a damaged or missing one is a UserError naming it and `fix`."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path} is missing: {fix}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path} is damaged ({type(err).__name__}): {fix}") from None


_LEFTOVER = re.compile(rf"^\..+\.(tmp|old|partial)-{re.escape(HOST)}-(\d+)$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_leftovers(*folders: Path) -> list[Path]:
    """Remove the temporary files and folders of dead processes of this host directly inside `folders`."""
    removed = []
    for folder in folders:
        if not Path(folder).is_dir():
            continue
        for entry in Path(folder).iterdir():
            match = _LEFTOVER.match(entry.name)
            if match and not _alive(int(match.group(2))):
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                removed.append(entry)
    return removed
