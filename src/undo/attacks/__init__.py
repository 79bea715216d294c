"""What a relearning attack can do besides full fine-tuning on forget data: train low-rank adapters (lora), train
only the output head and embeddings (probe), quantize the weights with no training (quantize), and hold out part
of the forget facts to score on (heldout). undo.stages.relearn composes them and names each attack's family for
the report; run_relearn.py's SUITES runs every family against the key models (docs/attacks.md)."""
