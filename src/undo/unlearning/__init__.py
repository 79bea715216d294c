"""Unlearning methods, each an objective over a forget batch and a retain batch, registered by name."""

from __future__ import annotations

from undo.errors import UserError
from undo.unlearning.graddiff import GradDiff
from undo.unlearning.maxent import MaxEnt
from undo.unlearning.repnoise import WithRepNoise
from undo.unlearning.rmu import RMU

METHODS = {"graddiff": GradDiff, "maxent": MaxEnt, "rmu": RMU}


def make_objective(
    method: str, model, args: dict, seed: int = 0, repnoise: dict | None = None, chunk_rows: int | None = None
):
    """The method's objective for `model`; `repnoise` {alpha, beta} adds the RepNoise terms on top; `chunk_rows`
    computes its logit losses from hidden states, that many positions at a time."""
    if method not in METHODS:
        raise UserError(f"unknown unlearning method {method!r}: choose one of {sorted(METHODS)}")
    try:
        objective = METHODS[method](model, seed=seed, **args)
    except TypeError as err:
        raise UserError(f"bad arguments for {method}: {err}") from None
    objective.chunk_rows = chunk_rows
    if repnoise:
        objective = WithRepNoise(objective, model, seed=seed, **repnoise)
    return objective


def variant(params: dict) -> str:
    """The name an unlearning job's run is grouped under for teacher selection, e.g. "maxent+sam"."""
    sam = params.get("optim", {}).get("sam_rho", 0.0)
    return params["method"] + ("+sam" if sam else "") + ("+repnoise" if params.get("repnoise") else "")
