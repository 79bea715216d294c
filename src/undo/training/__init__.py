"""The one training loop, its optimiser and checkpoints, the objectives it trains and the distillation stop rule."""
