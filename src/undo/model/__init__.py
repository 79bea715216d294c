"""The models: Gemma-2 presets, Gemma-2's soft-caps, logits from hidden states, the losses, and UNDO's noise."""
