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
