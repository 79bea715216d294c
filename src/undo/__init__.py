"""UNDO: robust unlearning by distillation (Unlearn, Noise, Distill on Outputs)."""
