"""The paper-scale grids follow the paper's protocol where the public code fixed what the paper leaves open."""

from __future__ import annotations

import pytest
import torch

import run_distill
import run_pretrain
import run_relearn
import run_unlearn
from undo.model import losses
from undo.settings import PAPER_CHUNK_ROWS, PUBLIC_BETAS


def jobs(module, setting: str, scale: str = "paper") -> dict:
    return {job.name: job.params for job in module.GRIDS[(setting, scale)]}


def test_the_paper_language_oracle_sees_its_data_once():
    grid = jobs(run_pretrain, "language")
    assert grid["oracle"]["optim"]["steps"] == 1220  # base steps x the share of the base's mix it keeps
    assert grid["base"]["optim"]["steps"] == 2441
    arithmetic = jobs(run_pretrain, "arithmetic")  # neither model reaches the end of its data: equal steps
    assert arithmetic["oracle"]["optim"] == arithmetic["base"]["optim"]


@pytest.mark.parametrize("setting", ["language", "arithmetic"])
def test_embedded_oracles_train_as_long_as_their_base_models(setting):
    embedded = jobs(run_pretrain, setting, "embedded")
    assert embedded["oracle"]["optim"] == embedded["base"]["optim"]  # tiny corpora: both repeat their data


@pytest.mark.parametrize("setting, undo_cap", [("language", 4000), ("arithmetic", 1000)])
def test_paper_full_distillation_runs_fixed_steps_and_undo_meets_its_rule_within_its_cap(setting, undo_cap):
    grid = jobs(run_distill, setting)
    for name, params in grid.items():
        if name.startswith("full-"):
            assert params.get("tolerance") is None and params["optim"]["steps"] == 1000
            assert params["optim"]["weight_decay"] == {"language": 0.1, "arithmetic": 0.0}[setting]
        if name.startswith("undo-"):
            assert params["tolerance"] == 0.05 and params["optim"]["steps"] == undo_cap
            assert params["optim"]["weight_decay"] == 0.0
        assert params["chunk_rows"] == PAPER_CHUNK_ROWS and params["optim"]["betas"] == PUBLIC_BETAS


def test_paper_grids_use_the_public_codes_adamw_betas():
    for setting in ("language", "arithmetic"):
        for module in (run_pretrain, run_unlearn, run_relearn):
            assert all(p["optim"]["betas"] == PUBLIC_BETAS for p in jobs(module, setting).values())


def test_mmd_bandwidth_adapts_to_the_activations_scale():
    """Fixed kernel widths see two far-apart clouds of large activations as infinitely far: the gradient
    vanishes. Widths scaled to the mean pairwise distance keep a usable gradient at every scale."""
    generator = torch.Generator().manual_seed(0)
    for scale in (0.1, 1.0, 100.0):
        x = (torch.randn(64, 32, generator=generator) * scale + 3 * scale).requires_grad_()
        y = torch.randn(64, 32, generator=generator) * scale
        (grad,) = torch.autograd.grad(losses.gaussian_mmd(x, y), x)
        assert grad.norm() * scale > 1e-3, scale  # scale-free: the gradient times the activations' scale
    x = (torch.randn(64, 32, generator=generator) * 100 + 300).requires_grad_()
    (fixed,) = torch.autograd.grad(losses.gaussian_mmd(x, y * 100, bandwidths=(1.0, 2.0, 4.0, 8.0, 16.0)), x)
    assert fixed.norm() < 1e-6
