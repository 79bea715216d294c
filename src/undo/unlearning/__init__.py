"""Unlearning methods, each an objective over a forget batch and a retain batch, registered by name."""

from undo.unlearning import graddiff, maxent, rmu  # noqa: F401  (each registers its method)
from undo.unlearning.registry import METHODS, make_objective, method, variant

__all__ = ["METHODS", "make_objective", "method", "variant"]
