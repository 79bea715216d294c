"""Evaluation: tasks that turn a model into named metrics (validation CE, arithmetic accuracy, lm-eval multiple
choice), and the metrics' declarations."""
