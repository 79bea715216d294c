"""The probe attack: retrain only the output head and the input embeddings on forget data, the body frozen. What
it recovers was still encoded in the body's hidden states; what it cannot was removed from them."""

from __future__ import annotations

from undo.training.objectives import LanguageModeling


class HeadOnly(LanguageModeling):
    """Next-token cross-entropy that trains the output head and the input embeddings only (tied in Gemma-2)."""

    def trainable(self, model):
        weights = (model.get_input_embeddings().weight, model.get_output_embeddings().weight)
        return list({id(w): w for w in weights}.values())
