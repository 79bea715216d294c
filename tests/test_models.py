"""Models: presets match the paper's sizes; saved checkpoints reload with plain transformers."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from undo.errors import UserError
from undo.model.models import GEMMA2_2B, PRESETS, count_parameters, load_model, model_config, save_model
from undo.model.softcap import ATTENTION


def test_paper_presets_have_the_papers_shapes(tokenizer):
    config = model_config("0.1B", tokenizer)
    assert (config.num_hidden_layers, config.hidden_size, config.intermediate_size, config.head_dim) == (
        14,
        320,
        1280,
        128,
    )
    assert (config.num_key_value_heads, config.query_pre_attn_scalar, config.final_logit_softcapping) == (
        4,
        256,
        30.0,
    )
    assert config.tie_word_embeddings and config._attn_implementation == ATTENTION
    assert PRESETS["0.9B"]["num_hidden_layers"] == 22 and GEMMA2_2B["vocab_size"] == 256000


def test_unknown_preset_is_a_clear_error(tokenizer):
    with pytest.raises(UserError, match="unknown model preset 'huge'"):
        model_config("huge", tokenizer)


def test_saved_model_reloads_with_plain_transformers_with_the_same_logits(micro_model, tokenizer, tmp_path):
    """Plain transformers loads a saved model with its own eager attention: the same function as the soft-cap
    through sigmoid that the toolkit's runs use (undo.model.softcap), equal to float rounding; load_model gives the
    model back bit for bit."""
    save_model(micro_model, tokenizer, tmp_path / "model")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "model")
    assert reloaded.config._attn_implementation == "eager"
    reloaded_tokenizer = AutoTokenizer.from_pretrained(tmp_path / "model")
    ids = torch.tensor([reloaded_tokenizer("표를 삽입합니다. Insert a table.")["input_ids"]])
    micro_model.eval()
    logits = micro_model(input_ids=ids).logits
    assert torch.allclose(logits, reloaded(input_ids=ids).logits, atol=1e-5)
    assert torch.equal(logits, load_model(tmp_path / "model")(input_ids=ids).logits)
    assert count_parameters(reloaded) == count_parameters(micro_model)  # tied embeddings counted once
