"""UNDO: robust unlearning by distillation (Unlearn, Noise, Distill on Outputs)."""

import logging

# transformers imports torchao (installed for the quantization attack) with every model class, and torchao's
# registrations make torch warn twice per process about an API torchao has yet to move off: not the user's concern.
logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)
