"""Unlearning methods by name: each method module registers its objective class, which declares its options as a
typed `Args` schema; RepNoise adds its terms on top of any of them."""

from __future__ import annotations

from undo.errors import UserError
from undo.unlearning.joint import Unlearning
from undo.unlearning.repnoise import WithRepNoise

METHODS: dict[str, type[Unlearning]] = {}


def register(name: str):
    """Class decorator: the method is known to the grids, the stage and the report as `name`."""

    def add(method: type[Unlearning]) -> type[Unlearning]:
        METHODS[name] = method
        return method

    return add


def method(name: str) -> type[Unlearning]:
    if name not in METHODS:
        raise UserError(f"unknown unlearning method {name!r}: choose one of {sorted(METHODS)}")
    return METHODS[name]


def make_objective(
    name: str, model, args: dict, seed: int = 0, repnoise: dict | None = None, chunk_rows: int | None = None
):
    """The method's objective for `model` with its options `args` (checked against its `Args`); `repnoise`
    {alpha, beta} adds the RepNoise terms on top; `chunk_rows` computes its logit losses from hidden states, that
    many positions at a time."""
    chosen = method(name)
    objective = chosen(model, chosen.Args.parse(args), seed=seed)
    objective.chunk_rows = chunk_rows
    if repnoise:
        objective = WithRepNoise(objective, model, WithRepNoise.Args.parse(repnoise), seed=seed)
    return objective


def variant(params: dict) -> str:
    """The name an unlearning job's run is grouped under for teacher selection, e.g. "maxent+sam"; a run without
    its retain term (RMU as the public scripts ran it) is its own group, "rmu+no-retain"."""
    sam = params.get("optim", {}).get("sam_rho", 0.0)
    no_retain = params.get("args", {}).get("retain_weight") == 0
    return (
        params["method"]
        + ("+sam" if sam else "")
        + ("+repnoise" if params.get("repnoise") else "")
        + ("+no-retain" if no_retain else "")
    )
