"""Randomly initialised Gemma-2 models built from config (no hub access), saved and loaded with transformers."""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from undo.errors import UserError
from undo.io.credentials import read_token
from undo.io.hub import fetching
from undo.model.softcap import attention_implementation

# google/gemma-2-2b's configuration, written out so that no run needs the hub to build a model.
GEMMA2_2B = dict(
    vocab_size=256000,
    hidden_size=2304,
    intermediate_size=9216,
    num_hidden_layers=26,
    num_attention_heads=8,
    num_key_value_heads=4,
    head_dim=256,
    hidden_activation="gelu_pytorch_tanh",
    max_position_embeddings=8192,
    rms_norm_eps=1e-6,
    rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
    query_pre_attn_scalar=256,
    sliding_window=4096,
    attn_logit_softcapping=50.0,
    final_logit_softcapping=30.0,
    tie_word_embeddings=True,
    initializer_range=0.02,
    pad_token_id=0,
    eos_token_id=1,
    bos_token_id=2,
)

# Size overrides of the paper's shrunken Gemma-2 models, plus CPU presets for the embedded scale and tests.
TINY = dict(
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=32,
    hidden_size=128,
    intermediate_size=512,
    query_pre_attn_scalar=32,
    max_position_embeddings=512,
)

SMALLEST = dict(num_hidden_layers=14, num_attention_heads=8, head_dim=128, hidden_size=320, intermediate_size=1280)

PRESETS = {
    "0.1B": SMALLEST,
    # The WMDP rehearsal's stand-in for google/gemma-2-2b: its 26 layers (the WMDP grids steer layer 15 and train
    # layers 10-15) at the 0.1B width, which a CPU can hold.
    "0.1B-26-layers": {**SMALLEST, "num_hidden_layers": 26},
    "0.3B": dict(num_hidden_layers=14, num_attention_heads=8, head_dim=128, hidden_size=768, intermediate_size=3072),
    "0.6B": dict(num_hidden_layers=18, num_attention_heads=8, head_dim=256, hidden_size=1024, intermediate_size=4096),
    "0.9B": dict(num_hidden_layers=22, num_attention_heads=8, head_dim=256, hidden_size=1280, intermediate_size=5120),
    "tiny": TINY,
    # The arithmetic setting's embedded model: tiny with two layers, which trains faster and learns the equation facts
    # in fewer steps (docs/performance.md, "Measured choices in the code").
    "tiny-2l": {**TINY, "num_hidden_layers": 2},
    "micro": dict(  # as many layers as tiny, so the embedded grids (RMU layers) also fit the smoke scale
        num_hidden_layers=4,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        hidden_size=32,
        intermediate_size=64,
        query_pre_attn_scalar=16,
        max_position_embeddings=256,
    ),
}


def model_config(preset: str, tokenizer):
    """Gemma-2 config of a preset, with the tokenizer's vocabulary size and special token ids."""
    special = dict(pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    special["bos_token_id"] = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    return preset_config(preset, len(tokenizer), **special)


def preset_config(preset: str, vocab_size: int, **special):
    """Gemma-2 config of a preset at a vocabulary size (special token ids: google/gemma-2-2b's unless given)."""
    from transformers import Gemma2Config  # heavy: see undo.model.softcap.attention_implementation

    if preset not in PRESETS:
        raise UserError(f"unknown model preset {preset!r}: choose one of {sorted(PRESETS)}")
    params = {**GEMMA2_2B, **PRESETS[preset], "vocab_size": vocab_size, **special}
    # Gemma-2's attention soft-capping has no SDPA/flash path in transformers; eager attention with a faster cap.
    return Gemma2Config(**params, attn_implementation=attention_implementation(), use_cache=False)


def build_model(preset: str, tokenizer, seed: int):
    """A freshly initialised Gemma2ForCausalLM; the seed fixes its weights."""
    from transformers import Gemma2ForCausalLM  # heavy: imported where a model is built

    _quiet()
    torch.manual_seed(seed)
    return Gemma2ForCausalLM(model_config(preset, tokenizer))


def build_like(model, seed: int):
    """A freshly initialised model of the same architecture and vocabulary as `model`."""
    _quiet()
    torch.manual_seed(seed)
    return type(model)(copy.deepcopy(model.config))


def load_model(path: Path | str, fix: str = "save it again", dtype=torch.float32):
    """A saved model; a missing or damaged one is a UserError naming the folder and `fix` (the command that
    rebuilds it)."""
    from transformers import AutoModelForCausalLM  # heavy: imported where a model is loaded

    _quiet()
    path = Path(path)
    if not (path / "config.json").is_file():
        raise UserError(f"the model at {path} is missing or incomplete (no config.json): rerun it: {fix}")
    try:
        return AutoModelForCausalLM.from_pretrained(path, attn_implementation=attention_implementation(), dtype=dtype)
    except Exception as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise UserError(f"the model at {path} is damaged ({type(err).__name__}: {reason}): rerun it: {fix}") from None


def load_start(source: str):
    """A pretrained checkpoint a setting starts from: a local `save_pretrained` folder or a hub id (with the token
    from tokens/), both through `from_pretrained` in bf16 on a GPU, fp32 on the CPU."""
    from transformers import AutoModelForCausalLM  # heavy: imported where a model is loaded

    _quiet()
    local = Path(source).expanduser()
    looks_local = source.startswith((".", "/", "~")) or local.exists() or source.count("/") != 1
    if looks_local and not (local / "config.json").is_file():
        raise UserError(
            f"start checkpoint {source} does not exist (no {local / 'config.json'}): give a save_pretrained folder "
            "or a hub id such as google/gemma-2-2b"
        )
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    if looks_local:
        return load_model(local, fix=f"restore the start checkpoint {source}", dtype=dtype)
    with fetching(f"model {source}"):
        return AutoModelForCausalLM.from_pretrained(
            source, attn_implementation=attention_implementation(), dtype=dtype, token=read_token("hf")
        )


def save_model(model, tokenizer, path: Path | str, state_dict: dict | None = None) -> None:
    _quiet()
    model.save_pretrained(path, state_dict=state_dict)
    tokenizer.save_pretrained(path)


def count_parameters(model) -> int:
    """Unique parameters (tied input/output embeddings counted once)."""
    return sum(p.numel() for p in unique_parameters(model))


def unique_parameters(model):
    seen = set()
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            yield p


def _quiet() -> None:
    """transformers' per-shard progress bars drown the training bars of a sweep."""
    from transformers.utils import logging  # heavy: imported where a model is built or loaded

    logging.disable_progress_bar()
